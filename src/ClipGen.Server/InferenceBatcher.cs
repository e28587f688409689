using System.Diagnostics;
using System.Threading.Channels;
using ClipGen.Applications;

namespace ClipGen.Server;

/// <summary>The queue is full: the request is answered 503 with Retry-After.</summary>
sealed class QueueFullException() : Exception("the server is busy: its request queue is full; retry later");

/// <summary>Embeddings of one request's inputs, in the order given: one row per text, one per image.</summary>
sealed record WorkResult(float[][] Texts, float[][] Images, object? Value);

/// <summary>One request's share of the model's work.</summary>
sealed class WorkItem(IReadOnlyList<string> texts, IReadOnlyList<float[]> images, Func<ClipPipeline, object?>? exclusive, CancellationToken cancel)
{
    public IReadOnlyList<string> Texts { get; } = texts;
    /// <summary>Preprocessed pixels, one [3,R,R] array per image.</summary>
    public IReadOnlyList<float[]> Images { get; } = images;
    /// <summary>Work run alone on the model's thread (a classifier's label embeddings), instead of embedding inputs.</summary>
    public Func<ClipPipeline, object?>? Exclusive { get; } = exclusive;
    public CancellationToken Cancel { get; } = cancel;
    public int Count => Texts.Count + Images.Count;
    public TaskCompletionSource<WorkResult> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// Dynamic batching: requests wait in a bounded queue; one worker takes the first, then gathers others that arrive within
/// <c>maxWait</c> until <c>maxBatch</c> inputs, runs the texts in one forward pass and the images in another, and hands each
/// request its rows. The worker is the only caller of the pipeline, so the model is never run from two threads at once.
/// A request that does not fit the queue is refused at once (<see cref="QueueFullException"/>), never left waiting.
/// </summary>
sealed class InferenceBatcher : IAsyncDisposable
{
    readonly ClipPipeline _pipeline;
    readonly int _maxBatch;
    readonly long _maxWaitTicks;
    readonly Channel<WorkItem> _channel;
    readonly ServerMetrics _metrics;
    readonly Task _loop;

    public InferenceBatcher(ClipPipeline pipeline, int maxBatch, int maxWaitMs, int capacity, ServerMetrics metrics)
    {
        _pipeline = pipeline;
        _maxBatch = maxBatch;
        _maxWaitTicks = maxWaitMs * Stopwatch.Frequency / 1000;
        _metrics = metrics;
        _channel = Channel.CreateBounded<WorkItem>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Requests waiting in the queue (not counting the batch being run).</summary>
    public int QueueDepth => _channel.Reader.Count;

    /// <summary>
    /// Before each batch the worker awaits this task; tests set an unfinished one to hold the worker and fill the queue.
    /// </summary>
    internal Task Gate { get; set; } = Task.CompletedTask;

    /// <summary>Embeds the inputs within a batch; throws <see cref="QueueFullException"/> when the queue is full.</summary>
    public Task<WorkResult> EmbedAsync(IReadOnlyList<string> texts, IReadOnlyList<float[]> images, CancellationToken cancel) =>
        Enqueue(new WorkItem(texts, images, null, cancel));

    /// <summary>Runs <paramref name="work"/> alone on the model's thread, in queue order.</summary>
    public async Task<T> RunAsync<T>(Func<ClipPipeline, T> work, CancellationToken cancel)
    {
        var r = await Enqueue(new WorkItem([], [], p => work(p), cancel)).ConfigureAwait(false);
        return (T)r.Value!;
    }

    Task<WorkResult> Enqueue(WorkItem item)
    {
        if (!_channel.Writer.TryWrite(item))
        {
            _metrics.QueueRejected();
            throw new QueueFullException();
        }
        return item.Done.Task;
    }

    async Task RunAsync()
    {
        var reader = _channel.Reader;
        WorkItem? carry = null;
        var batch = new List<WorkItem>();
        while (true)
        {
            WorkItem? first = carry;
            carry = null;
            if (first is null)
            {
                if (!await reader.WaitToReadAsync().ConfigureAwait(false)) break;
                await Gate.ConfigureAwait(false);
                if (!reader.TryRead(out first)) continue;
            }
            batch.Clear();
            batch.Add(first);
            if (first.Exclusive is null)
            {
                int n = first.Count;
                long deadline = Stopwatch.GetTimestamp() + _maxWaitTicks;
                while (n < _maxBatch)
                {
                    if (reader.TryRead(out var next))
                    {
                        if (next.Exclusive is not null || n + next.Count > _maxBatch) { carry = next; break; }
                        batch.Add(next);
                        n += next.Count;
                        continue;
                    }
                    long remaining = deadline - Stopwatch.GetTimestamp();
                    if (remaining <= 0) break;
                    using var timeout = new CancellationTokenSource(TimeSpan.FromTicks(remaining * TimeSpan.TicksPerSecond / Stopwatch.Frequency));
                    try
                    {
                        if (!await reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false)) break;
                    }
                    catch (OperationCanceledException) { break; }
                }
            }
            Execute(batch);
        }
    }

    void Execute(List<WorkItem> batch)
    {
        var live = new List<WorkItem>(batch.Count);
        foreach (var item in batch)
        {
            if (item.Cancel.IsCancellationRequested) item.Done.TrySetCanceled(item.Cancel);
            else live.Add(item);
        }
        if (live.Count == 0) return;
        if (live[0].Exclusive is { } work)
        {
            try { live[0].Done.TrySetResult(new WorkResult([], [], work(_pipeline))); }
            catch (Exception e) { live[0].Done.TrySetException(e); }
            return;
        }
        try
        {
            var texts = new List<string>();
            var images = new List<float[]>();
            foreach (var item in live)
            {
                texts.AddRange(item.Texts);
                images.AddRange(item.Images);
            }
            _metrics.Batch(texts.Count + images.Count);
            int d = _pipeline.Dimensions;
            var textRows = texts.Count == 0 ? [] : _pipeline.EmbedTexts(texts).Data;
            float[] imageRows = [];
            if (images.Count > 0)
            {
                int per = _pipeline.Preprocessor.ValuesPerImage;
                var pixels = new float[(long)images.Count * per];
                for (int i = 0; i < images.Count; i++) images[i].CopyTo(pixels.AsSpan(i * per, per));
                long s = _pipeline.Preprocessor.ImageSize;
                imageRows = _pipeline.EmbedImages(new ArrayTensor<float>(pixels, images.Count, 3, s, s)).Data;
            }
            int t = 0, m = 0;
            foreach (var item in live)
            {
                var tr = new float[item.Texts.Count][];
                for (int i = 0; i < tr.Length; i++) tr[i] = textRows.AsSpan(t++ * d, d).ToArray();
                var ir = new float[item.Images.Count][];
                for (int i = 0; i < ir.Length; i++) ir[i] = imageRows.AsSpan(m++ * d, d).ToArray();
                item.Done.TrySetResult(new WorkResult(tr, ir, null));
            }
        }
        catch (Exception e)
        {
            foreach (var item in live) item.Done.TrySetException(e);
        }
    }

    /// <summary>Stops taking requests and finishes the ones already queued.</summary>
    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        Gate = Task.CompletedTask;
        await _loop.ConfigureAwait(false);
    }
}
