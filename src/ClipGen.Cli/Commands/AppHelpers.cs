using System.Globalization;
using ClipGen.Applications;
using ClipGen.Backends;

namespace ClipGen.Cli.Commands;

/// <summary>Options shared by classify, embed and search: --model, --weights, --vocab, --backend.</summary>
static class AppHelpers
{
    public const string ModelUsage = "[--model <name|alias|spec.yaml>] --weights <file|folder> [--vocab FILE] [--backend torch|onnx] [--precision fp32|int8] [--threads N] [--concurrent-runs N]";

    /// <param name="Threads">Threads in total (0: the engines' defaults).</param>
    /// <param name="ConcurrentRuns">Parts each batch is split into and run at once, each on Threads / ConcurrentRuns threads.</param>
    /// <param name="Precision">float32, or int8 matrix multiplies (ONNX backend only).</param>
    public sealed record ModelArgs(string? Model, string Weights, string? Vocab, BackendKind Backend, int Threads = 0, int ConcurrentRuns = 1, Onnx.OnnxPrecision Precision = Onnx.OnnxPrecision.Float32);

    public static ModelArgs ModelOptions(CliArgs args)
    {
        var o = new ModelArgs(
            args.Get("model"),
            args.Require("weights"),
            args.Get("vocab"),
            ClipBackends.Parse(args.Get("backend") ?? "torch"),
            ThreadCount(args, "threads", 0),
            ThreadCount(args, "concurrent-runs", 1),
            ParsePrecision(args.Get("precision") ?? "fp32"));
        if (o.Precision == Onnx.OnnxPrecision.Int8 && o.Backend != BackendKind.Onnx)
            throw new CliUsageException("--precision int8 runs on ONNX Runtime: add --backend onnx");
        if (o.ConcurrentRuns < 1) throw new CliUsageException("--concurrent-runs must be at least 1");
        if (o.Threads > 0 && o.ConcurrentRuns > o.Threads)
            throw new CliUsageException($"--concurrent-runs {o.ConcurrentRuns} is more than --threads {o.Threads}: each run needs at least one thread");
        return o;
    }

    /// <summary>--precision: fp32 or int8.</summary>
    public static Onnx.OnnxPrecision ParsePrecision(string s) => s.ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" => Onnx.OnnxPrecision.Float32,
        "int8" => Onnx.OnnxPrecision.Int8,
        _ => throw new CliUsageException($"--precision takes fp32 or int8, not '{s}'"),
    };

    /// <summary>A thread count option: a whole number from 1 to <see cref="Limits.MaxThreads"/> (4 per processor).</summary>
    public static int ThreadCount(CliArgs args, string name, int fallback)
    {
        var text = args.Get(name);
        if (text is null) return fallback;
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int v) || v < 1 || v > Limits.MaxThreads)
            throw new CliUsageException($"--{name} must be a whole number from 1 to {Limits.MaxThreads} (4 per processor; CLIPGEN_MAX_THREADS raises it), not '{ErrorText.Value(text)}'");
        return v;
    }

    /// <summary>
    /// The backend options for --threads / --concurrent-runs: each of the N concurrent runs gets threads / N threads (all
    /// cores when --threads is not given), in TorchSharp (process-wide) and in ORT alike.
    /// </summary>
    public static ClipBackendOptions BackendOptions(ModelArgs o)
    {
        int total = o.Threads > 0 ? o.Threads : (o.ConcurrentRuns > 1 ? Environment.ProcessorCount : 0);
        int perRun = total > 0 ? Math.Max(1, total / o.ConcurrentRuns) : 0;
        return new ClipBackendOptions
        {
            TorchThreads = perRun,
            TorchConcurrentRuns = o.ConcurrentRuns,
            Precision = o.Precision,
            Session = new Onnx.OnnxClipSessionOptions { IntraOpNumThreads = perRun, ConcurrentRuns = o.ConcurrentRuns },
        };
    }

    /// <summary>Loads the pipeline; without --model the spec is inferred from the checkpoint (notes go to stderr).</summary>
    public static ClipPipeline Load(ModelArgs o, TextWriter stderr) =>
        ClipPipeline.Load(o.Model, o.Weights, o.Vocab, o.Backend, new LineLogger(stderr), BackendOptions(o));

    public static string Percent(double p) => (p * 100).ToString("F2", CultureInfo.InvariantCulture).PadLeft(6) + "%";

    public static string Score(double s) => s.ToString("F4", CultureInfo.InvariantCulture);
}
