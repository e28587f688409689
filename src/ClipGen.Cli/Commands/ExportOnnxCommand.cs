using System.CommandLine;
using ClipGen.Modeling;
using ClipGen.Onnx;

namespace ClipGen.Cli.Commands;

/// <summary><c>clipgen export-onnx</c>: writes image.onnx, text.onnx and/or clip.onnx of a model with its weights.</summary>
sealed class ExportOnnxCommand : CliCommand
{
    readonly Option<string?> _model = CliOptions.Text("--model", "name|alias|spec.yaml", "the model's spec");
    readonly Option<string?> _weights = CliOptions.Text("--weights", "checkpoint", "the weights");
    readonly Option<string?> _output = CliOptions.Text("--output", "DIR", "where image.onnx, text.onnx and clip.onnx go");
    readonly Option<(OnnxWeightStorage Storage, OnnxPrecision Precision)?> _dtype = CliOptions.Parsed<(OnnxWeightStorage, OnnxPrecision)?>("--dtype", "fp32|fp16|int8",
        "fp32, fp16 (float16 weights, float32 compute) or int8 (int8 matrix multiplies; docs/onnx.md)", s => ParseDtype(s), null);
    readonly Option<bool> _fp16 = CliOptions.Flag("--fp16", "the same as --dtype fp16");
    readonly Option<ClipOnnxKind> _kind = CliOptions.Parsed("--kind", "image|text|full|all", "which graphs (default all)", ParseKind, ClipOnnxKind.All);
    readonly Option<int> _opset = CliOptions.Int("--opset", OnnxGraphBuilder.DefaultOpset, "the ONNX opset", min: OnnxGraphBuilder.MinOpset);

    public ExportOnnxCommand() : base("export-onnx", "export a model with its weights to ONNX (image.onnx, text.onnx, clip.onnx)")
    {
        Required(_model);
        Required(_weights);
        Required(_output);
        foreach (var o in new Option[] { _dtype, _fp16, _kind, _opset }) Add(o);
    }

    public override int Run(ParseResult args, TextWriter stdout, TextWriter stderr)
    {
        var modelArg = Value(args, _model);
        var weights = Value(args, _weights);
        var output = Value(args, _output);
        var (storage, precision) = args.GetValue(_dtype) ?? ParseDtype(args.GetValue(_fp16) ? "fp16" : "fp32");
        var kind = args.GetValue(_kind);
        var opset = args.GetValue(_opset);

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
