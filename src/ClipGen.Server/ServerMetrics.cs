using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace ClipGen.Server;

/// <summary>
/// The server's metrics in Prometheus' text exposition format (version 0.0.4): requests by endpoint and status, request
/// latency, batch sizes, queue depth and refusals. Written by hand (a few counters and three histograms) rather than with
/// prometheus-net: that library keeps one process-wide registry, whereas each <see cref="ClipServer"/> (several run in one
/// test process) keeps its own numbers, and the format is a few lines of text.
/// </summary>
public sealed class ServerMetrics
{
    static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    static readonly double[] BatchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

    readonly ConcurrentDictionary<(string Endpoint, string Method, int Status), StrongBox> _requests = new();
    readonly ConcurrentDictionary<string, Histogram> _latency = new();
    readonly Histogram _batch = new(BatchBuckets);
    long _rejected;
    Func<int> _queueDepth = () => 0;

    internal void SetQueueDepth(Func<int> depth) => _queueDepth = depth;

    /// <summary>One answered request.</summary>
    public void Request(string endpoint, string method, int status, double seconds)
    {
        Interlocked.Increment(ref _requests.GetOrAdd((endpoint, method, status), _ => new StrongBox()).Value);
        _latency.GetOrAdd(endpoint, _ => new Histogram(LatencyBuckets)).Observe(seconds);
    }

    /// <summary>One forward batch of <paramref name="inputs"/> texts and images.</summary>
    public void Batch(int inputs) => _batch.Observe(inputs);

    internal void QueueRejected() => Interlocked.Increment(ref _rejected);

    /// <summary>The exposition text.</summary>
    public string Render()
    {
        var sb = new StringBuilder();
        sb.Append("# HELP clipgen_http_requests_total HTTP requests answered, by endpoint (route pattern), method and status code.\n");
        sb.Append("# TYPE clipgen_http_requests_total counter\n");
        foreach (var (key, box) in _requests.OrderBy(k => k.Key.Endpoint, StringComparer.Ordinal).ThenBy(k => k.Key.Method, StringComparer.Ordinal).ThenBy(k => k.Key.Status))
            sb.Append("clipgen_http_requests_total{endpoint=\"").Append(Escape(key.Endpoint)).Append("\",method=\"").Append(Escape(key.Method))
              .Append("\",status=\"").Append(key.Status.ToString(CultureInfo.InvariantCulture)).Append("\"} ")
              .Append(Interlocked.Read(ref box.Value).ToString(CultureInfo.InvariantCulture)).Append('\n');

        sb.Append("# HELP clipgen_http_request_duration_seconds Time from the request's arrival to its answer, by endpoint.\n");
        sb.Append("# TYPE clipgen_http_request_duration_seconds histogram\n");
        foreach (var (endpoint, h) in _latency.OrderBy(k => k.Key, StringComparer.Ordinal))
            h.Render(sb, "clipgen_http_request_duration_seconds", $"endpoint=\"{Escape(endpoint)}\"");

        sb.Append("# HELP clipgen_batch_size Inputs (texts and images) per forward batch of the dynamic batcher.\n");
        sb.Append("# TYPE clipgen_batch_size histogram\n");
        _batch.Render(sb, "clipgen_batch_size", null);

        sb.Append("# HELP clipgen_queue_depth Requests waiting for the model.\n");
        sb.Append("# TYPE clipgen_queue_depth gauge\n");
        sb.Append("clipgen_queue_depth ").Append(_queueDepth().ToString(CultureInfo.InvariantCulture)).Append('\n');

        sb.Append("# HELP clipgen_queue_rejected_total Requests refused with 503 because the queue was full.\n");
        sb.Append("# TYPE clipgen_queue_rejected_total counter\n");
        sb.Append("clipgen_queue_rejected_total ").Append(Interlocked.Read(ref _rejected).ToString(CultureInfo.InvariantCulture)).Append('\n');
        return sb.ToString();
    }

    static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    static string Number(double v) => double.IsPositiveInfinity(v) ? "+Inf" : v.ToString("R", CultureInfo.InvariantCulture);

    sealed class StrongBox { public long Value; }

    sealed class Histogram(double[] bounds)
    {
        readonly long[] _counts = new long[bounds.Length + 1];
        readonly object _gate = new();
        double _sum;
        long _count;

        public void Observe(double value)
        {
            int i = 0;
            while (i < bounds.Length && value > bounds[i]) i++;
            lock (_gate)
            {
                _counts[i]++;
                _sum += value;
                _count++;
            }
        }

        public void Render(StringBuilder sb, string name, string? labels)
        {
            long[] counts;
            double sum;
            long count;
            lock (_gate)
            {
                counts = (long[])_counts.Clone();
                sum = _sum;
                count = _count;
            }
            var prefix = labels is null ? "" : labels + ",";
            long cumulative = 0;
            for (int i = 0; i <= bounds.Length; i++)
            {
                cumulative += counts[i];
                var le = i < bounds.Length ? Number(bounds[i]) : "+Inf";
                sb.Append(name).Append("_bucket{").Append(prefix).Append("le=\"").Append(le).Append("\"} ").Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
            var braces = labels is null ? "" : "{" + labels + "}";
            sb.Append(name).Append("_sum").Append(braces).Append(' ').Append(Number(sum)).Append('\n');
            sb.Append(name).Append("_count").Append(braces).Append(' ').Append(count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
    }
}
