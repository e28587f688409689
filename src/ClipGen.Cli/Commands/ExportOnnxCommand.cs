using ClipGen.Modeling;
using ClipGen.Onnx;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen export-onnx</c>: writes image.onnx, text.onnx and/or clip.onnx of a model with its weights.</summary>
sealed class ExportOnnxCommand : ICommand
{
    public string Name => "export-onnx";
    public string Summary => "export a model with its weights to ONNX (image.onnx, text.onnx, clip.onnx)";
    public string Usage => "clipgen export-onnx --model <name|alias|spec.yaml> --weights <checkpoint> --output <dir> [--dtype fp32|fp16|int8] [--kind image|text|full|all] [--opset N]";

    public int Run(CliArgs args, TextWriter stdout, TextWriter stderr)
    {
        var modelArg = args.Require("model");
        var weights = args.Require("weights");
        var output = args.Require("output");
        var dtype = args.Get("dtype") ?? (args.Has("fp16") ? "fp16" : "fp32");
        var (storage, precision) = ParseDtype(dtype);
        var kind = ParseKind(args.Get("kind") ?? "all");
        var opset = args.GetInt("opset", OnnxGraphBuilder.DefaultOpset);
        args.RejectUnknown();
        if (opset < OnnxGraphBuilder.MinOpset) throw new CliUsageException($"--opset must be at least {OnnxGraphBuilder.MinOpset}");

        using var model = ClipModelFactory.Load(modelArg, weights);
        var files = ClipOnnxExporter.Export(model, kind, output, new OnnxExportOptions { WeightStorage = storage, Precision = precision, Opset = opset });
        foreach (var f in files)
        {
            long bytes = new FileInfo(f).Length + (File.Exists(f + ".data") ? new FileInfo(f + ".data").Length : 0);
            stdout.WriteLine($"{f}\t{bytes / 1e6:0.0} MB");
        }
        stderr.WriteLine($"{model.SpecName}: exported {files.Count} graph(s) ({DtypeDescription(storage, precision)}, opset {opset}) to {output}");
        return 0;
    }

    /// <summary>--dtype: fp32, fp16 (float16 weights, float32 compute) or int8 (int8 matrix multiplies, docs/onnx.md).</summary>
    internal static (OnnxWeightStorage Storage, OnnxPrecision Precision) ParseDtype(string s) => s.ToLowerInvariant() switch
    {
        "fp32" or "float32" or "float" => (OnnxWeightStorage.Float32, OnnxPrecision.Float32),
        "fp16" or "float16" or "half" => (OnnxWeightStorage.Float16, OnnxPrecision.Float32),
        "int8" => (OnnxWeightStorage.Float32, OnnxPrecision.Int8),
        _ => throw new CliUsageException($"--dtype takes fp32, fp16 or int8, not '{s}'"),
    };

    static string DtypeDescription(OnnxWeightStorage storage, OnnxPrecision precision) =>
        precision == OnnxPrecision.Int8 ? "int8 matrix multiplies, other weights fp32"
        : storage == OnnxWeightStorage.Float16 ? "fp16 weights" : "fp32 weights";

    internal static ClipOnnxKind ParseKind(string s) => s.ToLowerInvariant() switch
    {
        "image" => ClipOnnxKind.Image,
        "text" => ClipOnnxKind.Text,
        "full" => ClipOnnxKind.Full,
        "all" => ClipOnnxKind.All,
        _ => throw new CliUsageException($"--kind takes image, text, full or all, not '{s}'"),
    };
}
