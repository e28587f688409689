using System.Globalization;
using ClipGen.Applications;
using ClipGen.Backends;

namespace ClipGen.Cli.Commands;

/// <summary>Options shared by classify, embed and search: --model, --weights, --vocab, --backend.</summary>
static class AppHelpers
{
    public const string ModelUsage = "[--model <name|alias|spec.yaml>] --weights <file|folder> [--vocab FILE] [--backend torch|onnx]";

    public sealed record ModelArgs(string? Model, string Weights, string? Vocab, BackendKind Backend);

    public static ModelArgs ModelOptions(CliArgs args) => new(
        args.Get("model"),
        args.Require("weights"),
        args.Get("vocab"),
        ClipBackends.Parse(args.Get("backend") ?? "torch"));

    /// <summary>Loads the pipeline; without --model the spec is inferred from the checkpoint (notes go to stderr).</summary>
    public static ClipPipeline Load(ModelArgs o, TextWriter stderr) =>
        ClipPipeline.Load(o.Model, o.Weights, o.Vocab, o.Backend, stderr.WriteLine);

    public static string Percent(double p) => (p * 100).ToString("F2", CultureInfo.InvariantCulture).PadLeft(6) + "%";

    public static string Score(double s) => s.ToString("F4", CultureInfo.InvariantCulture);
}
