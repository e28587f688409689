using System.CommandLine;
using System.Globalization;
using ClipGen.Applications;
using ClipGen.Backends;

namespace ClipGen.Cli.Commands;

/// <summary>Options shared by classify, embed and search: --model, --weights, --vocab, --backend.</summary>
static class AppHelpers
{
    /// <param name="Threads">Threads in total (0: the engines' defaults).</param>
    /// <param name="ConcurrentRuns">Parts each batch is split into and run at once, each on Threads / ConcurrentRuns threads.</param>
    /// <param name="Precision">float32, or int8 matrix multiplies (ONNX backend only).</param>
    public sealed record ModelArgs(string? Model, string Weights, string? Vocab, BackendKind Backend, int Threads = 0, int ConcurrentRuns = 1, Onnx.OnnxPrecision Precision = Onnx.OnnxPrecision.Float32);

    /// <summary>--precision: fp32 or int8.</summary>
    public static Onnx.OnnxPrecision ParsePrecision(string s) => s.ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" => Onnx.OnnxPrecision.Float32,
        "int8" => Onnx.OnnxPrecision.Int8,
        _ => throw new CliUsageException($"--precision takes fp32 or int8, not '{ErrorText.Value(s)}'"),
    };

    /// <summary>--backend: torch or onnx.</summary>
    public static Option<BackendKind> BackendOption() =>
        CliOptions.Parsed("--backend", "torch|onnx", "the engine: TorchSharp (torch) or ONNX Runtime (onnx)", ClipBackends.Parse, BackendKind.Torch);

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

/// <summary>The options shared by classify, embed and search: --model, --weights, --vocab, --backend, --precision, --threads, --concurrent-runs.</summary>
sealed class ModelOptionSet
{
    public Option<string?> Model { get; } = CliOptions.Text("--model", "name|alias|spec.yaml", "the model's spec (default: inferred from the weights)");
    public Option<string?> Weights { get; } = CliOptions.Text("--weights", "file|folder", "the checkpoint: safetensors, .pt/.bin, OpenAI TorchScript, an open_clip or Hugging Face folder");
    public Option<string?> Vocab { get; } = CliOptions.Text("--vocab", "FILE", "the tokenizer's vocabulary, when the spec's is not found beside the weights or in $CLIPGEN_VOCAB");
    public Option<BackendKind> Backend { get; } = AppHelpers.BackendOption();
    public Option<Onnx.OnnxPrecision> Precision { get; } = CliOptions.Parsed("--precision", "fp32|int8", "fp32, or int8 matrix multiplies (ONNX Runtime only)", AppHelpers.ParsePrecision, Onnx.OnnxPrecision.Float32);
    public Option<int?> Threads { get; } = CliOptions.Threads("--threads", "threads in total (default: the engines' own)");
    public Option<int?> ConcurrentRuns { get; } = CliOptions.Threads("--concurrent-runs", "split each batch into N parts run at once, each on threads/N threads (default 1)");

    /// <summary>Adds the options to <paramref name="command"/>; --weights is required.</summary>
    public ModelOptionSet(Command command)
    {
        Weights.Description += " (required)";
        foreach (var o in new Option[] { Model, Weights, Vocab, Backend, Precision, Threads, ConcurrentRuns }) command.Options.Add(o);
        command.Validators.Add(r => { if (r.GetResult(Weights) is null) r.AddError("missing required option --weights"); });
    }

    /// <summary>The values, with the checks that join two options.</summary>
    public AppHelpers.ModelArgs Read(ParseResult args)
    {
        var o = new AppHelpers.ModelArgs(
            args.GetValue(Model),
            args.GetValue(Weights) ?? throw new CliUsageException("missing required option --weights"),
            args.GetValue(Vocab),
            args.GetValue(Backend),
            args.GetValue(Threads) ?? 0,
            args.GetValue(ConcurrentRuns) ?? 1,
            args.GetValue(Precision));
        if (o.Precision == Onnx.OnnxPrecision.Int8 && o.Backend != BackendKind.Onnx)
            throw new CliUsageException("--precision int8 runs on ONNX Runtime: add --backend onnx");
        if (o.Threads > 0 && o.ConcurrentRuns > o.Threads)
            throw new CliUsageException($"--concurrent-runs {o.ConcurrentRuns} is more than --threads {o.Threads}: each run needs at least one thread");
        return o;
    }
}
