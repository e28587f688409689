using System.Globalization;
using ClipGen.Modeling;
using ClipGen.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Onnx;

/// <summary>
/// Exports CLIP models per spec: from a loaded <see cref="ClipModule"/> (weights from its state_dict) to
/// <c>image.onnx</c>, <c>text.onnx</c> and <c>clip.onnx</c>, each self-describing through its metadata (spec name,
/// sizes, mean/std, activation, tokenizer and the canonical spec YAML). Generated models call it from <c>ExportOnnx</c>.
/// </summary>
public static class ClipOnnxExporter
{
    public const string ImageFileName = ClipOnnxNames.ImageFileName;
    public const string TextFileName = ClipOnnxNames.TextFileName;
    public const string FullFileName = ClipOnnxNames.FullFileName;

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

    /// <summary>Exports <paramref name="model"/> (its plan and current weights); returns the written model paths.</summary>
    public static IReadOnlyList<string> Export(ClipModule model, ClipOnnxKind kind, string outputDir, OnnxExportOptions? options = null)
    {
        options ??= new OnnxExportOptions();
        Directory.CreateDirectory(outputDir);
        var paths = new List<string>();
        using var _ = no_grad();
        using var weights = new StateDictWeights(model);
        foreach (var k in Graphs(kind))
        {
            var b = Build(model.Spec, model.Plan, k, weights.Get, options);
            var path = Path.Combine(outputDir, FileName(k));
            b.Save(path, new OnnxSaveOptions { ExternalData = options.ExternalData });
            paths.Add(path);
        }
        return paths;
    }

    /// <summary>One graph (image, text or full) of a spec with weights from <paramref name="weights"/>, metadata included.</summary>
    public static OnnxGraphBuilder Build(ClipSpec spec, ClipPlan plan, ClipOnnxKind kind, OnnxWeightSource weights, OnnxExportOptions? options = null) =>
        Build(spec, plan, kind, weights, (options ?? new OnnxExportOptions()).Builder(placeholders: false));

    /// <summary>
    /// The graph of a spec with placeholder weights: shapes from the plan's key table, no data read or held. Saved, the weights
    /// are zeros in a sparse external-data file, so even ViT-bigG-14's 10 GB graph is checked in a few MB of memory and disk.
    /// </summary>
    public static OnnxGraphBuilder BuildPlaceholderGraph(ClipSpec spec, ClipOnnxKind kind, OnnxExportOptions? options = null)
    {
        var plan = ClipPlan.From(spec);
        var shapes = plan.KeyTable.ToDictionary(k => k.Key, k => k, StringComparer.Ordinal);
        OnnxWeight StandIn(string key) => shapes.TryGetValue(key, out var k)
            ? OnnxWeight.ShapeOnly(k.Shape.ToArray(), k.DType == "int64" ? OnnxElementType.Int64 : OnnxElementType.Float)
            : throw new KeyNotFoundException($"'{key}' is not in the key table of {spec.Name}");
        return Build(spec, plan, kind, StandIn, (options ?? new OnnxExportOptions()).Builder(placeholders: true));
    }

    static OnnxGraphBuilder Build(ClipSpec spec, ClipPlan plan, ClipOnnxKind kind, OnnxWeightSource weights, OnnxBuilderOptions builderOptions)
    {
        var b = ClipOnnxExport.Export(kind, plan, weights, builderOptions);
        AddSpecMetadata(b, spec, kind);
        if (!builderOptions.PlaceholderWeights)
        {
            // The temperature (and SigLIP bias) make the image and text files enough to compute logits.
            b.Metadata[ClipOnnxNames.MetaLogitScale] = Scalar(weights("logit_scale")).ToString("R", CultureInfo.InvariantCulture);
            if (plan.LogitBias) b.Metadata[ClipOnnxNames.MetaLogitBias] = Scalar(weights("logit_bias")).ToString("R", CultureInfo.InvariantCulture);
        }
        return b;
    }

    static float Scalar(OnnxWeight w) => w.Type == OnnxElementType.Float16
        ? (float)BitConverter.ToHalf(w.Data.Span)
        : BitConverter.ToSingle(w.Data.Span);

    /// <summary>Spec facts in the model's metadata (the <c>clipgen.*</c> keys of docs/onnx.md).</summary>
    public static void AddSpecMetadata(OnnxGraphBuilder b, ClipSpec spec, ClipOnnxKind kind)
    {
        var inv = CultureInfo.InvariantCulture;
        static string List(IEnumerable<double> xs) => string.Join(",", xs.Select(x => x.ToString("R", CultureInfo.InvariantCulture)));
        b.Metadata[ClipOnnxNames.MetaSpecName] = spec.Name;
        b.Metadata[ClipOnnxNames.MetaSpecYaml] = SpecYamlWriter.Write(spec);
        b.Metadata[ClipOnnxNames.MetaActivation] = SpecWords.Activation[kind == ClipOnnxKind.Text ? spec.Text.Activation : spec.Vision.Activation];
        b.Metadata[ClipOnnxNames.MetaLoss] = SpecWords.Loss[spec.Loss];
        if (kind != ClipOnnxKind.Text)
        {
            b.Metadata[ClipOnnxNames.MetaMean] = List(spec.Preprocess.Mean);
            b.Metadata[ClipOnnxNames.MetaStd] = List(spec.Preprocess.Std);
        }
        if (kind != ClipOnnxKind.Image)
        {
            b.Metadata[ClipOnnxNames.MetaTokenizer] = spec.Tokenizer.Kind;
            b.Metadata[ClipOnnxNames.MetaPooling] = SpecWords.TextPooling[spec.Text.Pooling];
            b.Metadata[ClipOnnxNames.MetaEosId] = spec.Text.EosId.ToString(inv);
        }
    }

    /// <summary>
    /// The model's state_dict as a weight source: each tensor copied to float32 (int64 for integer buffers) on the CPU when read.
    /// </summary>
    internal sealed class StateDictWeights(ClipModule model) : IDisposable
    {
        readonly Dictionary<string, Tensor> _state = model.state_dict();

        public OnnxWeight Get(string key)
        {
            if (!_state.TryGetValue(key, out var t)) throw new KeyNotFoundException($"{model.Spec.Name} has no weight '{key}'");
            using var scope = NewDisposeScope();
            var d = t.detach();
            var integer = d.dtype == ScalarType.Int64;
            if (d.device_type != DeviceType.CPU || d.dtype != (integer ? ScalarType.Int64 : ScalarType.Float32))
                d = d.to(integer ? ScalarType.Int64 : ScalarType.Float32, CPU);
            d = d.contiguous();
            return new OnnxWeight(d.shape, integer ? OnnxElementType.Int64 : OnnxElementType.Float, d.bytes.ToArray());
        }

        public void Dispose() { }
    }
}
