using System.Globalization;
using ClipGen.Applications;

namespace ClipGen.Cli.Commands;

/// <summary>Options shared by classify, embed and search: --model, --weights, --vocab, --backend.</summary>
static class AppHelpers
{
    public const string ModelUsage = "--model <name|alias|spec.yaml> --weights <file> [--vocab FILE] [--backend torch|onnx]";

    public static (string Model, string Weights, string? Vocab, ClipBackend Backend) ModelOptions(CliArgs args)
    {
        var model = args.Require("model");
        var weights = args.Require("weights");
        var vocab = args.Get("vocab");
        var backend = ClipEncoders.ParseBackend(args.Get("backend") ?? "torch");
        return (model, weights, vocab, backend);
    }

    public static ClipPipeline Load((string Model, string Weights, string? Vocab, ClipBackend Backend) o) =>
        ClipPipeline.Load(o.Model, o.Weights, o.Vocab, o.Backend);

    public static string Percent(double p) => (p * 100).ToString("F2", CultureInfo.InvariantCulture).PadLeft(6) + "%";

    public static string Score(double s) => s.ToString("F4", CultureInfo.InvariantCulture);
}
