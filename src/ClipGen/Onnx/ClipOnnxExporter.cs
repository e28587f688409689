using System.Globalization;
using ClipGen.Modeling;
using ClipGen.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Onnx;

/// <summary>Options of <see cref="ClipOnnxExporter"/>.</summary>
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

/// <summary>
/// Exports CLIP models per spec: from a loaded <see cref="ClipModule"/> (weights from its state_dict) to
/// <c>image.onnx</c>, <c>text.onnx</c> and <c>clip.onnx</c>, each self-describing through its metadata (spec name,
/// sizes, mean/std, activation, tokenizer and the canonical spec YAML). Generated models call it from <c>ExportOnnx</c>.
/// </summary>
public static class ClipOnnxExporter
{
    public const string ImageFileName = "image.onnx";
    public const string TextFileName = "text.onnx";
    public const string FullFileName = "clip.onnx";

    /// <summary>The file name of one graph kind.</summary>
    public static string FileName(ClipOnnxKind kind) => kind switch
    {
        ClipOnnxKind.Image => ImageFileName,
        ClipOnnxKind.Text => TextFileName,
        ClipOnnxKind.Full => FullFileName,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "All names three files"),
    };

    /// <summary>The single-graph kinds <paramref name="kind"/> asks for (All → image, text, full).</summary>
    public static IReadOnlyList<ClipOnnxKind> Graphs(ClipOnnxKind kind) =>
        kind == ClipOnnxKind.All ? [ClipOnnxKind.Image, ClipOnnxKind.Text, ClipOnnxKind.Full] : [kind];

    /// <summary>Exports <paramref name="model"/> with its spec's hyper-parameters; returns the written model paths.</summary>
    public static IReadOnlyList<string> Export(ClipModule model, ClipOnnxKind kind, string outputDir, OnnxExportOptions? options = null) =>
        Export(model, ClipHyper.FromSpec(model.Spec), kind, outputDir, options);

    /// <summary>Exports <paramref name="model"/> with the given hyper-parameters (generated code passes its literals).</summary>
    public static IReadOnlyList<string> Export(ClipModule model, ClipHyper hyper, ClipOnnxKind kind, string outputDir, OnnxExportOptions? options = null)
    {
        options ??= new OnnxExportOptions();
        Directory.CreateDirectory(outputDir);
        var paths = new List<string>();
        using var _ = no_grad();
        using var weights = new StateDictWeights(model);
        foreach (var k in Graphs(kind))
        {
            var b = Build(model.Spec, hyper, k, weights.Get, options);
            var path = Path.Combine(outputDir, FileName(k));
            b.Save(path, new OnnxSaveOptions { ExternalData = options.ExternalData });
            paths.Add(path);
        }
        return paths;
    }

    /// <summary>One graph (image, text or full) of a spec with weights from <paramref name="weights"/>, metadata included.</summary>
    public static OnnxGraphBuilder Build(ClipSpec spec, ClipHyper hyper, ClipOnnxKind kind, Func<string, Tensor> weights, OnnxExportOptions? options = null) =>
        Build(spec, hyper, kind, weights, (options ?? new OnnxExportOptions()).Builder(placeholders: false));

    /// <summary>
    /// The graph of a spec with placeholder weights: shapes from the key table, no data read or held. Saved, the weights are
    /// zeros in a sparse external-data file, so even ViT-bigG-14's 10 GB graph is checked in a few MB of memory and disk.
    /// </summary>
    public static OnnxGraphBuilder BuildPlaceholderGraph(ClipSpec spec, ClipHyper hyper, ClipOnnxKind kind, OnnxExportOptions? options = null)
    {
        var shapes = KeyTable.Build(spec).ToDictionary(k => k.Key, k => k.Shape.ToArray(), StringComparer.Ordinal);
        using var scope = NewDisposeScope();
        var scalar = zeros(Array.Empty<long>());
        Tensor StandIn(string key) => shapes.TryGetValue(key, out var s)
            ? scalar.expand(s)
            : throw new KeyNotFoundException($"'{key}' is not in the key table of {spec.Name}");
        return Build(spec, hyper, kind, StandIn, (options ?? new OnnxExportOptions()).Builder(placeholders: true));
    }

    static OnnxGraphBuilder Build(ClipSpec spec, ClipHyper hyper, ClipOnnxKind kind, Func<string, Tensor> weights, OnnxBuilderOptions builderOptions)
    {
        var b = ClipOnnxExport.Export(kind, hyper, weights, builderOptions);
        AddSpecMetadata(b, spec, kind);
        if (!builderOptions.PlaceholderWeights)
        {
            // The temperature (and SigLIP bias) make the image and text files enough to compute logits.
            b.Metadata[ClipOnnxNames.MetaLogitScale] = weights("logit_scale").ToSingle().ToString("R", CultureInfo.InvariantCulture);
            if (hyper.LogitBias) b.Metadata[ClipOnnxNames.MetaLogitBias] = weights("logit_bias").ToSingle().ToString("R", CultureInfo.InvariantCulture);
        }
        return b;
    }

    /// <summary>Spec facts in the model's metadata (the <c>clipgen.*</c> keys of docs/onnx.md).</summary>
    public static void AddSpecMetadata(OnnxGraphBuilder b, ClipSpec spec, ClipOnnxKind kind)
    {
        var inv = CultureInfo.InvariantCulture;
        static string List(IEnumerable<double> xs) => string.Join(",", xs.Select(x => x.ToString("R", CultureInfo.InvariantCulture)));
        b.Metadata[ClipOnnxNames.MetaSpecName] = spec.Name;
        b.Metadata[ClipOnnxNames.MetaSpecYaml] = SpecYamlWriter.Write(spec);
        b.Metadata[ClipOnnxNames.MetaActivation] = spec.Activation == ActivationKind.Gelu ? "gelu" : "quick_gelu";
        if (kind != ClipOnnxKind.Text)
        {
            b.Metadata[ClipOnnxNames.MetaMean] = List(spec.Preprocess.Mean);
            b.Metadata[ClipOnnxNames.MetaStd] = List(spec.Preprocess.Std);
        }
        if (kind != ClipOnnxKind.Image)
        {
            b.Metadata[ClipOnnxNames.MetaTokenizer] = spec.Tokenizer.Kind;
            b.Metadata[ClipOnnxNames.MetaPooling] = spec.Text.Pooling == TextPooling.Eos ? "eos" : "argmax";
            b.Metadata[ClipOnnxNames.MetaEosId] = spec.Text.EosId.ToString(inv);
        }
    }

    /// <summary>
    /// The model's state_dict as a weights function: detached CPU float32 views, created on first use and disposed with this
    /// object (the builder copies what it reads).
    /// </summary>
    internal sealed class StateDictWeights(ClipModule model) : IDisposable
    {
        readonly Dictionary<string, Tensor> _state = model.state_dict();
        readonly List<Tensor> _owned = [];

        public Tensor Get(string key)
        {
            if (!_state.TryGetValue(key, out var t)) throw new KeyNotFoundException($"{model.Spec.Name} has no weight '{key}'");
            var d = t.detach();
            _owned.Add(d);
            if (d.device_type == DeviceType.CPU && d.dtype is ScalarType.Float32 or ScalarType.Int64) return d;
            var c = d.to(d.dtype == ScalarType.Int64 ? ScalarType.Int64 : ScalarType.Float32, CPU);
            _owned.Add(c);
            return c;
        }

        public void Dispose()
        {
            foreach (var t in _owned) t.Dispose();
        }
    }
}
