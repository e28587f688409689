using ClipGen.Modeling;
using ClipGen.Onnx;
using ClipGen.Specs;
using TorchSharp;
using static TorchSharp.torch;

namespace ClipGen.Backends;

/// <summary>Which engine runs a model.</summary>
public enum BackendKind
{
    /// <summary>The TorchSharp modules (libtorch).</summary>
    Torch,

    /// <summary>ClipGen's ONNX export run by ONNX Runtime.</summary>
    Onnx,
}

/// <summary>Options of <see cref="ClipBackends.Create(ClipModule, BackendKind, ClipBackendOptions?)"/>.</summary>
public sealed record ClipBackendOptions
{
    /// <summary>ONNX Runtime session options (threads, optimisation level, execution providers).</summary>
    public OnnxClipSessionOptions Session { get; init; } = new();

    /// <summary>How the ONNX backend exports the model (fp16 weights, opset).</summary>
    public OnnxExportOptions Export { get; init; } = new();

    /// <summary>
    /// float32 (default) or int8. Int8 quantizes the ONNX backend's matrix multiplies (<see cref="OnnxQuantizer"/>; it sets
    /// <see cref="OnnxExportOptions.Precision"/> of <see cref="Export"/>); the Torch backend computes in float32 only and
    /// refuses it.
    /// </summary>
    public OnnxPrecision Precision { get; init; } = OnnxPrecision.Float32;

    /// <summary>The export options with <see cref="Precision"/> applied.</summary>
    internal OnnxExportOptions EffectiveExport => Precision == OnnxPrecision.Int8 ? Export with { Precision = OnnxPrecision.Int8 } : Export;

    /// <summary>
    /// Where the ONNX backend writes its exports. Null keeps them in memory, or in a temporary folder when the model is
    /// over 2 GB (ORT then reads external data next to the file).
    /// </summary>
    public string? OnnxDirectory { get; init; }

    /// <summary>libtorch intra-op threads for the Torch backend (process-wide <c>torch.set_num_threads</c>); 0 leaves it.</summary>
    public int TorchThreads { get; init; }

    /// <summary>
    /// The Torch backend splits an encoder batch into this many contiguous parts and runs them on as many threads at once
    /// (1, the default: one forward per batch). With <c>TorchThreads = 1</c> and one part per core, each core runs its own
    /// matrix multiplies instead of two threads synchronising on every op; docs/benchmarks.md has the numbers. The ONNX
    /// backend's equivalent is <see cref="OnnxClipSessionOptions.ConcurrentRuns"/>.
    /// </summary>
    public int TorchConcurrentRuns { get; init; } = 1;
}

/// <summary>
/// One model behind either engine: the same calls, the same tensors in and out ([N,3,R,R] float32 pixels, [N,L] int64 ids
/// with L ≤ context length; unnormalised [N,E] features; logits as CLIP's forward). Results belong to the caller.
/// </summary>
public interface IClipBackend : IDisposable
{
    BackendKind Kind { get; }

    /// <summary>The resolved spec of the model.</summary>
    ClipSpec Spec { get; }

    /// <summary>Image features [N, E] (unnormalised).</summary>
    Tensor EncodeImage(Tensor pixelValues);

    /// <summary>Text features [N, E] (unnormalised).</summary>
    Tensor EncodeText(Tensor inputIds);

    /// <summary>logits_per_image [N, M] and logits_per_text [M, N] of features.</summary>
    (Tensor PerImage, Tensor PerText) Logits(Tensor imageFeatures, Tensor textFeatures);
}

/// <summary>
/// The input checks of every backend, with one set of messages, so that the TorchSharp and ONNX Runtime backends refuse and
/// accept the same inputs: pixel_values [N,3,R,R] of a floating type, input_ids [N,L] (1 ≤ L ≤ context length) of an integer
/// type with every id in [0, vocab_size). An empty batch (N = 0) is accepted and gives empty features.
/// </summary>
public static class ClipInputs
{
    /// <summary>Throws a <see cref="ClipGenException"/> unless <paramref name="pixelValues"/> fits <paramref name="spec"/>'s image tower.</summary>
    public static void CheckPixels(ClipSpec spec, Tensor pixelValues)
    {
        var r = spec.Vision.ImageSize;
        if (pixelValues.dim() != 4 || pixelValues.shape[1] != 3 || pixelValues.shape[2] != r || pixelValues.shape[3] != r)
            throw new ClipGenException($"{spec.Name} expects pixel_values of shape [N,3,{r},{r}], got [{string.Join(",", pixelValues.shape)}]");
        if (!pixelValues.is_floating_point())
            throw new ClipGenException($"{spec.Name} expects floating-point pixel_values, got {pixelValues.dtype}");
    }

    /// <summary>Throws a <see cref="ClipGenException"/> unless <paramref name="inputIds"/> fits <paramref name="spec"/>'s text tower.</summary>
    public static void CheckTokens(ClipSpec spec, Tensor inputIds)
    {
        var c = spec.Text.ContextLength;
        if (inputIds.dim() != 2 || inputIds.shape[1] > c || inputIds.shape[1] < 1)
            throw new ClipGenException($"{spec.Name} expects input_ids of shape [N,L] with 1 <= L <= {c}, got [{string.Join(",", inputIds.shape)}]");
        if (inputIds.dtype != ScalarType.Int64 && inputIds.dtype != ScalarType.Int32)
            throw new ClipGenException($"{spec.Name} expects integer input_ids, got {inputIds.dtype}");
        if (inputIds.numel() > 0)
        {
            long min = inputIds.min().ToInt64(), max = inputIds.max().ToInt64();
            CheckTokenRange(spec, min, max);
        }
    }

    /// <summary>Throws unless every id in <paramref name="inputIds"/> is in [0, vocab_size).</summary>
    public static void CheckTokens(ClipSpec spec, ReadOnlySpan<long> inputIds)
    {
        if (inputIds.IsEmpty) return;
        long min = long.MaxValue, max = long.MinValue;
        foreach (var id in inputIds) { if (id < min) min = id; if (id > max) max = id; }
        CheckTokenRange(spec, min, max);
    }

    static void CheckTokenRange(ClipSpec spec, long min, long max)
    {
        if (min < 0 || max >= spec.Text.VocabSize)
            throw new ClipGenException($"{spec.Name}: token id {(min < 0 ? min : max)} is outside the vocabulary [0, {spec.Text.VocabSize})");
    }
}

/// <summary>Creates backends; switching engines is one argument.</summary>
public static class ClipBackends
{
    /// <summary>
    /// A backend over <paramref name="model"/> (which the caller keeps owning). <see cref="BackendKind.Onnx"/> exports the
    /// model's current weights (image and text graphs) and opens them in ONNX Runtime.
    /// </summary>
    public static IClipBackend Create(ClipModule model, BackendKind kind, ClipBackendOptions? options = null) => kind switch
    {
        BackendKind.Torch => new TorchClipBackend(model, options),
        BackendKind.Onnx => OnnxClipBackend.FromModel(model, options),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>The typed form: inputs and outputs carry the model type.</summary>
    public static ClipBackend<TModel> Create<TModel>(TModel model, BackendKind kind, ClipBackendOptions? options = null)
        where TModel : ClipModule, IClipModel<TModel> => new(Create((ClipModule)model, kind, options));

    /// <summary>Parses a backend name (<c>torch</c>, <c>onnx</c>/<c>ort</c>).</summary>
    public static BackendKind Parse(string name) => name.ToLowerInvariant() switch
    {
        "torch" or "torchsharp" => BackendKind.Torch,
        "onnx" or "ort" or "onnxruntime" => BackendKind.Onnx,
        _ => throw new ClipGenException($"unknown backend '{name}'; use torch or onnx"),
    };

    /// <summary>Both features and the logits, as CLIP's forward.</summary>
    public static ClipOutput Forward(this IClipBackend backend, Tensor pixelValues, Tensor inputIds)
    {
        using var img = backend.EncodeImage(pixelValues);
        using var txt = backend.EncodeText(inputIds);
        var (perImage, perText) = backend.Logits(img, txt);
        return new ClipOutput(perImage, perText);
    }
}

/// <summary>A backend bound to one generated model type, so that pixels and tokens of another model do not compile.</summary>
public sealed class ClipBackend<TModel>(IClipBackend inner) : IDisposable where TModel : ClipModule, IClipModel<TModel>
{
    /// <summary>The untyped backend.</summary>
    public IClipBackend Inner { get; } = inner.Spec.Name == TModel.ModelSpec.Name
        ? inner
        : throw new ArgumentException($"backend of {inner.Spec.Name} cannot serve {TModel.ModelSpec.Name}");

    public BackendKind Kind => Inner.Kind;

    public ImageEmbeddings<TModel> EncodeImage(Pixels<TModel> pixels) => new(Inner.EncodeImage(pixels.Tensor));

    public TextEmbeddings<TModel> EncodeText(TokenIds<TModel> tokens) => new(Inner.EncodeText(tokens.Tensor));

    public ClipOutput Logits(ImageEmbeddings<TModel> image, TextEmbeddings<TModel> text)
    {
        var (perImage, perText) = Inner.Logits(image.Tensor, text.Tensor);
        return new ClipOutput(perImage, perText);
    }

    public ClipOutput Forward(Pixels<TModel> pixels, TokenIds<TModel> tokens) => Inner.Forward(pixels.Tensor, tokens.Tensor);

    public void Dispose() => Inner.Dispose();
}

/// <summary>The TorchSharp backend: the model's own forward under inference mode.</summary>
public sealed class TorchClipBackend : IClipBackend
{
    readonly ClipModule _model;
    readonly int _concurrentRuns;

    public TorchClipBackend(ClipModule model, ClipBackendOptions? options = null)
    {
        _model = model;
        _concurrentRuns = options?.TorchConcurrentRuns ?? 1;
        if (options?.Precision == OnnxPrecision.Int8 || options?.Export.Precision == OnnxPrecision.Int8)
            throw new ClipGenException("int8 precision runs on the ONNX Runtime backend only; the TorchSharp backend computes in float32");
        Limits.CheckThreads(_concurrentRuns, nameof(ClipBackendOptions.TorchConcurrentRuns));
        if (options?.TorchThreads is { } threads and not 0) torch.set_num_threads(Limits.CheckThreads(threads, nameof(ClipBackendOptions.TorchThreads)));
        _model.eval();
    }

    public BackendKind Kind => BackendKind.Torch;
    public ClipSpec Spec => _model.Spec;

    /// <summary>The wrapped model.</summary>
    public ClipModule Model => _model;

    public Tensor EncodeImage(Tensor pixelValues)
    {
        ClipInputs.CheckPixels(Spec, pixelValues);
        return Split(pixelValues, _model.EncodeImage);
    }

    public Tensor EncodeText(Tensor inputIds)
    {
        ClipInputs.CheckTokens(Spec, inputIds);
        return Split(inputIds, _model.EncodeText);
    }

    /// <summary>
    /// Runs <paramref name="encode"/> on the whole batch, or on <see cref="ClipBackendOptions.TorchConcurrentRuns"/> contiguous
    /// parts at once (inference mode and dispose scopes are per thread, so each worker sets its own) and concatenates.
    /// </summary>
    Tensor Split(Tensor input, Func<Tensor, Tensor> encode)
    {
        long batch = input.shape[0];
        if (batch == 0) return torch.empty(0, Spec.EmbedDim, dtype: ScalarType.Float32);
        int parts = (int)Math.Max(1, Math.Min(_concurrentRuns, batch));
        if (parts == 1)
        {
            using var _ = torch.inference_mode();
            return encode(input);
        }
        var results = new Tensor[parts];
        try
        {
            Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
            {
                long start = batch * p / parts, end = batch * (p + 1) / parts;
                using var _ = torch.inference_mode();
                using var part = input.narrow(0, start, end - start);
                results[p] = encode(part);
            });
            using var __ = torch.inference_mode();
            return torch.cat(results, 0);
        }
        finally
        {
            foreach (var r in results) r?.Dispose();
        }
    }

    public (Tensor PerImage, Tensor PerText) Logits(Tensor imageFeatures, Tensor textFeatures)
    {
        using var _ = torch.inference_mode();
        return _model.Logits(imageFeatures, textFeatures);
    }

    /// <summary>The model belongs to the caller; nothing to release.</summary>
    public void Dispose() { }
}

/// <summary>
/// The ONNX Runtime backend: <c>image.onnx</c> and <c>text.onnx</c> sessions plus a tiny logits graph. Tensors are handed
/// to ORT by pointer and outputs written straight into pre-allocated tensors (<see cref="OnnxClipSession"/>).
/// Token rows shorter than the context length are padded with 0 (causal attention makes the padding invisible).
/// </summary>
public sealed class OnnxClipBackend : IClipBackend
{
    readonly OnnxClipSession _image;
    readonly OnnxClipSession _text;
    readonly LogitsHead _logits;

    OnnxClipBackend(ClipSpec spec, OnnxClipSession image, OnnxClipSession text, LogitsHead logits)
    {
        Spec = spec;
        _image = image;
        _text = text;
        _logits = logits;
    }

    public BackendKind Kind => BackendKind.Onnx;
    public ClipSpec Spec { get; }

    /// <summary>The image encoder session.</summary>
    public OnnxClipSession ImageSession => _image;

    /// <summary>The text encoder session.</summary>
    public OnnxClipSession TextSession => _text;

    /// <summary>Exports the model's weights and opens the graphs.</summary>
    public static OnnxClipBackend FromModel(ClipModule model, ClipBackendOptions? options = null)
    {
        options ??= new ClipBackendOptions();
        var spec = model.Spec;
        float scale;
        float? bias;
        using (no_grad())
        {
            scale = model.LogitScale.ToSingle();
            bias = model.LogitBias?.ToSingle();
        }
        var sessions = new List<OnnxClipSession>();
        try
        {
            string? dir = options.OnnxDirectory;
            foreach (var kind in new[] { ClipOnnxKind.Image, ClipOnnxKind.Text })
            {
                OnnxGraphBuilder b;
                using (no_grad())
                using (var weights = new ClipOnnxExporter.StateDictWeights(model))
                    b = ClipOnnxExporter.Build(spec, model.Plan, kind, weights.Get, options.EffectiveExport);
                if (dir is null && b.WeightBytes < (1L << 31) - (256L << 20))
                {
                    sessions.Add(new OnnxClipSession(b.ToBytes(), options.Session));
                    continue;
                }
                dir ??= Directory.CreateTempSubdirectory("clipgen-onnx-").FullName;
                var path = Path.Combine(dir, ClipOnnxExporter.FileName(kind));
                b.Save(path, new OnnxSaveOptions { ExternalData = options.Export.ExternalData });
                sessions.Add(new OnnxClipSession(path, options.Session));
            }
            return new OnnxClipBackend(spec, sessions[0], sessions[1], new LogitsHead(spec.EmbedDim, scale, bias, options.Session));
        }
        catch
        {
            foreach (var s in sessions) s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens exports written by <see cref="ClipOnnxExporter"/> (<c>image.onnx</c>, <c>text.onnx</c>); the spec and the logit
    /// scale come from their metadata.
    /// </summary>
    public static OnnxClipBackend Open(string directory, ClipBackendOptions? options = null)
    {
        options ??= new ClipBackendOptions();
        var image = OpenSession(Path.Combine(directory, ClipOnnxExporter.ImageFileName), options);
        OnnxClipSession? text = null;
        try
        {
            text = OpenSession(Path.Combine(directory, ClipOnnxExporter.TextFileName), options);
            var meta = image.Metadata;
            if (!meta.TryGetValue(ClipOnnxNames.MetaSpecYaml, out var yaml) || !meta.TryGetValue(ClipOnnxNames.MetaLogitScale, out var scaleText))
                throw new ClipGenException($"'{directory}' holds no ClipGen export metadata ({ClipOnnxNames.MetaSpecYaml}, {ClipOnnxNames.MetaLogitScale})");
            var spec = SpecResolver.ResolveSingle("<onnx " + directory + ">", yaml);
            float scale = float.Parse(scaleText, System.Globalization.CultureInfo.InvariantCulture);
            float? bias = meta.TryGetValue(ClipOnnxNames.MetaLogitBias, out var b) ? float.Parse(b, System.Globalization.CultureInfo.InvariantCulture) : null;
            var logits = new LogitsHead(spec.EmbedDim, scale, bias, options.Session);
            return new OnnxClipBackend(spec, image, text, logits);
        }
        catch
        {
            image.Dispose();
            text?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A session over an exported file as it is, or, when int8 is asked for and the file is float32, over an int8 copy
    /// quantized in memory (files with external data must be exported as int8 instead).
    /// </summary>
    static OnnxClipSession OpenSession(string path, ClipBackendOptions options)
    {
        var export = options.EffectiveExport;
        if (export.Precision != OnnxPrecision.Int8) return new OnnxClipSession(path, options.Session);
        var info = OnnxModelInfo.Load(path);
        if (info.Metadata.TryGetValue(OnnxQuantizer.MetaPrecision, out var p) && p == "int8") return new OnnxClipSession(path, options.Session);
        if (info.Initializers.Any(i => i.IsExternal))
            throw new ClipGenException($"{path} keeps its weights in external data and cannot be quantized when opened; export it as int8");
        return new OnnxClipSession(OnnxQuantizer.Quantize(File.ReadAllBytes(path), export.Quantization), options.Session);
    }

    public Tensor EncodeImage(Tensor pixelValues)
    {
        ClipInputs.CheckPixels(Spec, pixelValues);
        if (pixelValues.shape[0] == 0) return empty(0, Spec.EmbedDim, dtype: ScalarType.Float32);
        return _image.EncodeImage(pixelValues);
    }

    public Tensor EncodeText(Tensor inputIds)
    {
        ClipInputs.CheckTokens(Spec, inputIds);
        var c = Spec.Text.ContextLength;
        if (inputIds.shape[0] == 0) return empty(0, Spec.EmbedDim, dtype: ScalarType.Float32);
        if (inputIds.shape[1] == c) return _text.EncodeText(inputIds);
        using var padded = nn.functional.pad(inputIds.to(ScalarType.Int64), [0, c - inputIds.shape[1]], value: Spec.Text.PadId);
        return _text.EncodeText(padded);
    }

    public (Tensor PerImage, Tensor PerText) Logits(Tensor imageFeatures, Tensor textFeatures) => _logits.Run(imageFeatures, textFeatures);

    public void Dispose()
    {
        _image.Dispose();
        _text.Dispose();
        _logits.Dispose();
    }
}

/// <summary>The logits graph (<see cref="ClipOnnxExport.LogitsHead"/>) in its own small ORT session.</summary>
sealed class LogitsHead : IDisposable
{
    static readonly string[] Inputs = [ClipOnnxNames.ImageFeatures, ClipOnnxNames.TextFeatures];
    static readonly string[] Outputs = [ClipOnnxNames.LogitsPerImage, ClipOnnxNames.LogitsPerText];
    readonly Microsoft.ML.OnnxRuntime.InferenceSession _session;
    readonly Microsoft.ML.OnnxRuntime.RunOptions _run = new();

    public LogitsHead(int embedDim, float scale, float? bias, OnnxClipSessionOptions options)
    {
        using var o = options.Create();
        _session = new Microsoft.ML.OnnxRuntime.InferenceSession(ClipOnnxExport.LogitsHead(embedDim, scale, bias).ToBytes(), o);
    }

    public (Tensor PerImage, Tensor PerText) Run(Tensor imageFeatures, Tensor textFeatures)
    {
        using var scope = NewDisposeScope();
        var img = OnnxClipSession.Prepare(imageFeatures, ScalarType.Float32, 2, ClipOnnxNames.ImageFeatures);
        var txt = OnnxClipSession.Prepare(textFeatures, ScalarType.Float32, 2, ClipOnnxNames.TextFeatures);
        long n = img.shape[0], m = txt.shape[0];
        var perImage = empty(n, m);
        var perText = empty(m, n);
        const Microsoft.ML.OnnxRuntime.Tensors.TensorElementType F = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float;
        using (var i1 = OnnxClipSession.Wrap(img, F))
        using (var i2 = OnnxClipSession.Wrap(txt, F))
        using (var o1 = OnnxClipSession.Wrap(perImage, F))
        using (var o2 = OnnxClipSession.Wrap(perText, F))
            _session.Run(_run, Inputs, [i1, i2], Outputs, [o1, o2]);
        return (perImage.MoveToOuterDisposeScope(), perText.MoveToOuterDisposeScope());
    }

    public void Dispose()
    {
        _run.Dispose();
        _session.Dispose();
    }
}
