namespace ClipGen.Onnx;

/// <summary>How ClipGen exports ONNX graphs (<c>ClipOnnxExporter</c> in the ClipGen package; the ONNX backend uses it when it exports a loaded model).</summary>
public sealed record OnnxExportOptions
{
    /// <summary>float32 (exact) or float16 weights (half the file; accuracy in docs/onnx.md).</summary>
    public OnnxWeightStorage WeightStorage { get; init; } = OnnxWeightStorage.Float32;

    /// <summary>The default-domain opset (at least 17).</summary>
    public int Opset { get; init; } = OnnxGraphBuilder.DefaultOpset;

    /// <summary>float32 (default) or int8 matrix multiplies (<see cref="OnnxQuantizer"/>; error and speed in docs/onnx.md).</summary>
    public OnnxPrecision Precision { get; init; } = OnnxPrecision.Float32;

    /// <summary>How int8 is done when <see cref="Precision"/> is <see cref="OnnxPrecision.Int8"/> (default: the measured best).</summary>
    public OnnxQuantizationOptions? Quantization { get; init; }

    /// <summary>External data: automatic over 2 GB (default), always, or never.</summary>
    public OnnxExternalDataMode ExternalData { get; init; } = OnnxExternalDataMode.Auto;

    internal OnnxBuilderOptions Builder(bool placeholders) => new()
    {
        Opset = Opset,
        WeightStorage = WeightStorage,
        PlaceholderWeights = placeholders,
        Quantization = Precision == OnnxPrecision.Int8 ? Quantization ?? new OnnxQuantizationOptions() : null,
    };
}
