using ClipGen.Onnx;
using ClipGen.Specs;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace ClipGen.Backends;

/// <summary>Which engine runs a model.</summary>
public enum BackendKind
{
    /// <summary>The TorchSharp modules (libtorch).</summary>
    Torch,

    /// <summary>ClipGen's ONNX export run by ONNX Runtime.</summary>
    Onnx,
}

/// <summary>Options of a backend (<see cref="OnnxClipBackend.Open"/>, and <c>ClipBackends.Create</c> in the ClipGen package).</summary>
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
/// One model behind either engine: the same calls, the same arrays in and out ([N,3,R,R] float32 pixels, [N,L] int64 ids
/// with L ≤ context length; unnormalised [N,E] features; logits as CLIP's forward). Results belong to the caller. The
/// ClipGen package adds TorchSharp tensor overloads of the three calls.
/// </summary>
public interface IClipBackend : IDisposable
{
    BackendKind Kind { get; }

    /// <summary>The resolved spec of the model.</summary>
    ClipSpec Spec { get; }

    /// <summary>Image features [N, E] (unnormalised).</summary>
    ArrayTensor<float> EncodeImage(ArrayTensor<float> pixelValues);

    /// <summary>Text features [N, E] (unnormalised).</summary>
    ArrayTensor<float> EncodeText(ArrayTensor<long> inputIds);

    /// <summary>logits_per_image [N, M] and logits_per_text [M, N] of features.</summary>
    (ArrayTensor<float> PerImage, ArrayTensor<float> PerText) Logits(ArrayTensor<float> imageFeatures, ArrayTensor<float> textFeatures);
}

/// <summary>
/// The input checks of every backend, with one set of messages, so that the TorchSharp and ONNX Runtime backends refuse and
/// accept the same inputs: pixel_values [N,3,R,R] of a floating type, input_ids [N,L] (1 ≤ L ≤ context length) of an integer
/// type with every id in [0, vocab_size). An empty batch (N = 0) is accepted and gives empty features.
/// </summary>
public static class ClipInputs
{
    /// <summary>Throws a <see cref="ClipGenException"/> unless pixels of <paramref name="shape"/> and element type <paramref name="dtype"/> fit <paramref name="spec"/>'s image tower.</summary>
    public static void CheckPixels(ClipSpec spec, ReadOnlySpan<long> shape, bool floating, string dtype)
    {
        var r = spec.Vision.ImageSize;
        if (shape.Length != 4 || shape[1] != 3 || shape[2] != r || shape[3] != r)
            throw new ClipGenException($"{spec.Name} expects pixel_values of shape [N,3,{r},{r}], got [{string.Join(",", shape.ToArray())}]");
        if (!floating)
            throw new ClipGenException($"{spec.Name} expects floating-point pixel_values, got {dtype}");
    }

    /// <summary>Throws unless <paramref name="pixelValues"/> fits <paramref name="spec"/>'s image tower.</summary>
    public static void CheckPixels(ClipSpec spec, ArrayTensor<float> pixelValues)
    {
        ArgumentNullException.ThrowIfNull(pixelValues);
        CheckPixels(spec, pixelValues.Shape, true, "Float32");
    }

    /// <summary>Throws unless ids of <paramref name="shape"/> and element type <paramref name="dtype"/> fit <paramref name="spec"/>'s text tower (the values are checked by <see cref="CheckTokens(ClipSpec, ReadOnlySpan{long})"/>).</summary>
    public static void CheckTokenShape(ClipSpec spec, ReadOnlySpan<long> shape, bool integer, string dtype)
    {
        var c = spec.Text.ContextLength;
        if (shape.Length != 2 || shape[1] > c || shape[1] < 1)
            throw new ClipGenException($"{spec.Name} expects input_ids of shape [N,L] with 1 <= L <= {c}, got [{string.Join(",", shape.ToArray())}]");
        if (!integer)
            throw new ClipGenException($"{spec.Name} expects integer input_ids, got {dtype}");
    }

    /// <summary>Throws unless <paramref name="inputIds"/> fits <paramref name="spec"/>'s text tower.</summary>
    public static void CheckTokens(ClipSpec spec, ArrayTensor<long> inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        CheckTokenShape(spec, inputIds.Shape, true, "Int64");
        CheckTokens(spec, inputIds.Data);
    }

    /// <summary>Throws unless every id in <paramref name="inputIds"/> is in [0, vocab_size).</summary>
    public static void CheckTokens(ClipSpec spec, ReadOnlySpan<long> inputIds)
    {
        if (inputIds.IsEmpty) return;
        long min = long.MaxValue, max = long.MinValue;
        foreach (var id in inputIds) { if (id < min) min = id; if (id > max) max = id; }
        CheckTokenRange(spec, min, max);
    }

    /// <summary>Throws unless [<paramref name="min"/>, <paramref name="max"/>] lies in [0, vocab_size).</summary>
    public static void CheckTokenRange(ClipSpec spec, long min, long max)
    {
        if (min < 0 || max >= spec.Text.VocabSize)
            throw new ClipGenException($"{spec.Name}: token id {(min < 0 ? min : max)} is outside the vocabulary [0, {spec.Text.VocabSize})");
    }
}

/// <summary>
/// The ONNX Runtime backend: <c>image.onnx</c> and <c>text.onnx</c> sessions plus a tiny logits graph. Arrays are handed
/// to ORT pinned and outputs written straight into new arrays (<see cref="OnnxClipSession"/>).
/// Token rows shorter than the context length are padded with the pad id (causal attention makes the padding invisible).
/// </summary>
public sealed class OnnxClipBackend : IClipBackend
{
    readonly OnnxClipSession _image;
    readonly OnnxClipSession _text;
    readonly LogitsHead _logits;

    /// <summary>A backend over open sessions (which it then owns) and the logit scale and bias.</summary>
    internal OnnxClipBackend(ClipSpec spec, OnnxClipSession image, OnnxClipSession text, float logitScale, float? logitBias, OnnxClipSessionOptions sessionOptions)
    {
        Spec = spec;
        _image = image;
        _text = text;
        _logits = new LogitsHead(spec.EmbedDim, logitScale, logitBias, sessionOptions);
    }

    public BackendKind Kind => BackendKind.Onnx;
    public ClipSpec Spec { get; }

    /// <summary>The image encoder session.</summary>
    public OnnxClipSession ImageSession => _image;

    /// <summary>The text encoder session.</summary>
    public OnnxClipSession TextSession => _text;

    /// <summary>
    /// Opens an export folder written by ClipGen (<c>clipgen export-onnx</c>: <c>image.onnx</c>, <c>text.onnx</c>); the spec and
    /// the logit scale come from their metadata, so nothing else is needed.
    /// </summary>
    public static OnnxClipBackend Open(string directory, ClipBackendOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        options ??= new ClipBackendOptions();
        var imagePath = Path.Combine(directory, ClipOnnxNames.ImageFileName);
        if (!File.Exists(imagePath)) throw new ClipGenException($"'{directory}' holds no {ClipOnnxNames.ImageFileName} (export one with ClipGen's ONNX export)");
        var image = OpenSession(imagePath, options);
        OnnxClipSession? text = null;
        try
        {
            text = OpenSession(Path.Combine(directory, ClipOnnxNames.TextFileName), options);
            var meta = image.Metadata;
            if (!meta.TryGetValue(ClipOnnxNames.MetaSpecYaml, out var yaml) || !meta.TryGetValue(ClipOnnxNames.MetaLogitScale, out var scaleText))
                throw new ClipGenException($"'{directory}' holds no ClipGen export metadata ({ClipOnnxNames.MetaSpecYaml}, {ClipOnnxNames.MetaLogitScale})");
            var spec = SpecResolver.ResolveSingle("<onnx " + directory + ">", yaml);
            float scale = float.Parse(scaleText, System.Globalization.CultureInfo.InvariantCulture);
            float? bias = meta.TryGetValue(ClipOnnxNames.MetaLogitBias, out var b) ? float.Parse(b, System.Globalization.CultureInfo.InvariantCulture) : null;
            return new OnnxClipBackend(spec, image, text, scale, bias, options.Session);
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

    public ArrayTensor<float> EncodeImage(ArrayTensor<float> pixelValues)
    {
        ClipInputs.CheckPixels(Spec, pixelValues);
        int n = pixelValues.Rows;
        return new ArrayTensor<float>(n == 0 ? [] : _image.EncodeImage(pixelValues.Data, n), n, Spec.EmbedDim);
    }

    public ArrayTensor<float> EncodeText(ArrayTensor<long> inputIds)
    {
        ClipInputs.CheckTokens(Spec, inputIds);
        int n = inputIds.Rows, c = Spec.Text.ContextLength, l = (int)inputIds.Dim(1);
        if (n == 0) return new ArrayTensor<float>([], 0, Spec.EmbedDim);
        var ids = inputIds.Data;
        if (l != c)
        {
            ids = new long[(long)n * c];
            Array.Fill(ids, (long)Spec.Text.PadId);
            for (int i = 0; i < n; i++) inputIds.Data.AsSpan(i * l, l).CopyTo(ids.AsSpan(i * c, l));
        }
        return new ArrayTensor<float>(_text.EncodeText(ids, n), n, Spec.EmbedDim);
    }

    public (ArrayTensor<float> PerImage, ArrayTensor<float> PerText) Logits(ArrayTensor<float> imageFeatures, ArrayTensor<float> textFeatures) =>
        _logits.Run(imageFeatures, textFeatures);

    public void Dispose()
    {
        _image.Dispose();
        _text.Dispose();
        _logits.Dispose();
    }
}

/// <summary>The logits graph (<see cref="ClipOnnxHead"/>) in its own small ORT session.</summary>
sealed class LogitsHead : IDisposable
{
    static readonly string[] Inputs = [ClipOnnxNames.ImageFeatures, ClipOnnxNames.TextFeatures];
    static readonly string[] Outputs = [ClipOnnxNames.LogitsPerImage, ClipOnnxNames.LogitsPerText];
    readonly InferenceSession _session;
    readonly RunOptions _run = new();

    public LogitsHead(int embedDim, float scale, float? bias, OnnxClipSessionOptions options)
    {
        using var o = options.Create();
        _session = new InferenceSession(ClipOnnxHead.Build(embedDim, scale, bias).ToBytes(), o);
    }

    public (ArrayTensor<float> PerImage, ArrayTensor<float> PerText) Run(ArrayTensor<float> imageFeatures, ArrayTensor<float> textFeatures)
    {
        ArgumentNullException.ThrowIfNull(imageFeatures);
        ArgumentNullException.ThrowIfNull(textFeatures);
        if (imageFeatures.Rank != 2) throw new ArgumentException($"{ClipOnnxNames.ImageFeatures} must have rank 2, not {imageFeatures.Rank}");
        if (textFeatures.Rank != 2) throw new ArgumentException($"{ClipOnnxNames.TextFeatures} must have rank 2, not {textFeatures.Rank}");
        int n = imageFeatures.Rows, m = textFeatures.Rows;
        var perImage = new float[(long)n * m];
        var perText = new float[(long)m * n];
        if (n > 0 && m > 0)
        {
            using var i1 = OrtValue.CreateTensorValueFromMemory(imageFeatures.Data, [n, imageFeatures.Dim(1)]);
            using var i2 = OrtValue.CreateTensorValueFromMemory(textFeatures.Data, [m, textFeatures.Dim(1)]);
            using var o1 = OrtValue.CreateTensorValueFromMemory(perImage, [n, m]);
            using var o2 = OrtValue.CreateTensorValueFromMemory(perText, [m, n]);
            _session.Run(_run, Inputs, [i1, i2], Outputs, [o1, o2]);
        }
        return (new ArrayTensor<float>(perImage, n, m), new ArrayTensor<float>(perText, m, n));
    }

    public void Dispose()
    {
        _run.Dispose();
        _session.Dispose();
    }
}
