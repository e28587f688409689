using Microsoft.ML.OnnxRuntime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace ClipGen.Onnx;

/// <summary>Session settings for <see cref="OnnxClipSession"/>.</summary>
public sealed record OnnxClipSessionOptions
{
    /// <summary>Intra-op threads; 0 lets ONNX Runtime choose.</summary>
    public int IntraOpNumThreads { get; init; }

    /// <summary>Graph optimisation level (default: all, including ORT's transformer fusions).</summary>
    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>Where ORT writes the optimised graph, if anywhere.</summary>
    public string? OptimizedModelFilePath { get; init; }

    /// <summary>
    /// Last say over the <see cref="SessionOptions"/>, e.g. to append an execution provider in a GPU build:
    /// <c>o => o.AppendExecutionProvider_CUDA(0)</c>.
    /// </summary>
    public Action<SessionOptions>? Configure { get; init; }

    internal SessionOptions Create()
    {
        var o = new SessionOptions { GraphOptimizationLevel = OptimizationLevel };
        try
        {
            if (IntraOpNumThreads > 0) o.IntraOpNumThreads = IntraOpNumThreads;
            if (OptimizedModelFilePath is not null) o.OptimizedModelFilePath = OptimizedModelFilePath;
            Configure?.Invoke(o);
            return o;
        }
        catch
        {
            o.Dispose();
            throw;
        }
    }
}

/// <summary>The outputs of the full model, row-major.</summary>
/// <param name="ImageFeatures">[ImageBatch, EmbedDim]</param>
/// <param name="TextFeatures">[TextBatch, EmbedDim]</param>
/// <param name="LogitsPerImage">[ImageBatch, TextBatch]</param>
/// <param name="LogitsPerText">[TextBatch, ImageBatch]</param>
public sealed record ClipOnnxOutputs(float[] ImageFeatures, float[] TextFeatures, float[] LogitsPerImage, float[] LogitsPerText, int ImageBatch, int TextBatch, int EmbedDim);

/// <summary>
/// Runs ClipGen's CLIP exports (image, text or full) in ONNX Runtime. Inputs are wrapped in place (managed arrays are pinned,
/// TorchSharp CPU tensors are passed by pointer) and outputs are written straight into pre-allocated arrays or tensors,
/// so a call copies no data. Not thread-safe for concurrent calls on one instance's tensors; the ORT session itself is.
/// </summary>
public sealed class OnnxClipSession : IDisposable
{
    readonly InferenceSession _session;
    readonly RunOptions _run = new();

    public OnnxClipSession(string modelPath, OnnxClipSessionOptions? options = null)
    {
        using var o = (options ?? new OnnxClipSessionOptions()).Create();
        _session = new InferenceSession(modelPath, o);
        (Kind, ImageSize, ContextLength, EmbedDim) = Describe(_session);
    }

    public OnnxClipSession(byte[] model, OnnxClipSessionOptions? options = null)
    {
        using var o = (options ?? new OnnxClipSessionOptions()).Create();
        _session = new InferenceSession(model, o);
        (Kind, ImageSize, ContextLength, EmbedDim) = Describe(_session);
    }

    /// <summary>The underlying ORT session.</summary>
    public InferenceSession Session => _session;

    public ClipOnnxKind Kind { get; }

    /// <summary>R of pixel_values [batch, 3, R, R] (0 for a text model).</summary>
    public int ImageSize { get; }

    /// <summary>C of input_ids [batch, C] (0 for an image model).</summary>
    public int ContextLength { get; }

    public int EmbedDim { get; }

    /// <summary>The model's metadata_props.</summary>
    public IReadOnlyDictionary<string, string> Metadata => _session.ModelMetadata.CustomMetadataMap;

    static (ClipOnnxKind, int, int, int) Describe(InferenceSession s)
    {
        bool img = s.InputMetadata.ContainsKey(ClipOnnxNames.PixelValues);
        bool txt = s.InputMetadata.ContainsKey(ClipOnnxNames.InputIds);
        var kind = (img, txt) switch
        {
            (true, true) => ClipOnnxKind.Full,
            (true, false) => ClipOnnxKind.Image,
            (false, true) => ClipOnnxKind.Text,
            _ => throw new InvalidOperationException($"not a ClipGen CLIP model: inputs are {string.Join(", ", s.InputMetadata.Keys)}"),
        };
        int r = img ? s.InputMetadata[ClipOnnxNames.PixelValues].Dimensions[3] : 0;
        int c = txt ? s.InputMetadata[ClipOnnxNames.InputIds].Dimensions[1] : 0;
        var featureOut = img ? ClipOnnxNames.ImageFeatures : ClipOnnxNames.TextFeatures;
        int e = s.OutputMetadata[featureOut].Dimensions[1];
        return (kind, r, c, e);
    }

    // ---------------------------------------------------------------- arrays

    /// <summary>Image features [batch, E] of pixel_values [batch, 3, R, R] (row-major).</summary>
    public float[] EncodeImage(float[] pixels, int batch)
    {
        Require(ClipOnnxKind.Image);
        CheckLength(pixels.Length, (long)batch * 3 * ImageSize * ImageSize, ClipOnnxNames.PixelValues);
        var result = new float[batch * EmbedDim];
        using var input = OrtValue.CreateTensorValueFromMemory(pixels, PixelShape(batch));
        using var output = OrtValue.CreateTensorValueFromMemory(result, [batch, EmbedDim]);
        _session.Run(_run, [ClipOnnxNames.PixelValues], [input], [ClipOnnxNames.ImageFeatures], [output]);
        return result;
    }

    /// <summary>Text features [batch, E] of input_ids [batch, C] (row-major).</summary>
    public float[] EncodeText(long[] ids, int batch)
    {
        Require(ClipOnnxKind.Text);
        CheckLength(ids.Length, (long)batch * ContextLength, ClipOnnxNames.InputIds);
        var result = new float[batch * EmbedDim];
        using var input = OrtValue.CreateTensorValueFromMemory(ids, [batch, ContextLength]);
        using var output = OrtValue.CreateTensorValueFromMemory(result, [batch, EmbedDim]);
        _session.Run(_run, [ClipOnnxNames.InputIds], [input], [ClipOnnxNames.TextFeatures], [output]);
        return result;
    }

    /// <summary>The full model's four outputs.</summary>
    public ClipOnnxOutputs Run(float[] pixels, int imageBatch, long[] ids, int textBatch)
    {
        Require(ClipOnnxKind.Full);
        CheckLength(pixels.Length, (long)imageBatch * 3 * ImageSize * ImageSize, ClipOnnxNames.PixelValues);
        CheckLength(ids.Length, (long)textBatch * ContextLength, ClipOnnxNames.InputIds);
        var r = new ClipOnnxOutputs(new float[imageBatch * EmbedDim], new float[textBatch * EmbedDim],
            new float[imageBatch * textBatch], new float[textBatch * imageBatch], imageBatch, textBatch, EmbedDim);
        using var px = OrtValue.CreateTensorValueFromMemory(pixels, PixelShape(imageBatch));
        using var tx = OrtValue.CreateTensorValueFromMemory(ids, [textBatch, ContextLength]);
        using var o1 = OrtValue.CreateTensorValueFromMemory(r.ImageFeatures, [imageBatch, EmbedDim]);
        using var o2 = OrtValue.CreateTensorValueFromMemory(r.TextFeatures, [textBatch, EmbedDim]);
        using var o3 = OrtValue.CreateTensorValueFromMemory(r.LogitsPerImage, [imageBatch, textBatch]);
        using var o4 = OrtValue.CreateTensorValueFromMemory(r.LogitsPerText, [textBatch, imageBatch]);
        _session.Run(_run, FullInputs, [px, tx], FullOutputs, [o1, o2, o3, o4]);
        return r;
    }

    static readonly string[] FullInputs = [ClipOnnxNames.PixelValues, ClipOnnxNames.InputIds];
    static readonly string[] FullOutputs = [ClipOnnxNames.ImageFeatures, ClipOnnxNames.TextFeatures, ClipOnnxNames.LogitsPerImage, ClipOnnxNames.LogitsPerText];

    // ---------------------------------------------------------------- TorchSharp tensors

    /// <summary>Image features of a CPU float32 tensor [batch, 3, R, R]; ORT reads and writes the tensors' memory directly.</summary>
    public Tensor EncodeImage(Tensor pixels)
    {
        Require(ClipOnnxKind.Image);
        using var scope = NewDisposeScope();
        var px = Prepare(pixels, ScalarType.Float32, 4, ClipOnnxNames.PixelValues);
        var result = empty(px.shape[0], EmbedDim, dtype: ScalarType.Float32);
        using (var input = Wrap(px, TensorElementType.Float))
        using (var output = Wrap(result, TensorElementType.Float))
            _session.Run(_run, [ClipOnnxNames.PixelValues], [input], [ClipOnnxNames.ImageFeatures], [output]);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>Text features of a CPU int64 tensor [batch, C].</summary>
    public Tensor EncodeText(Tensor ids)
    {
        Require(ClipOnnxKind.Text);
        using var scope = NewDisposeScope();
        var tx = Prepare(ids, ScalarType.Int64, 2, ClipOnnxNames.InputIds);
        var result = empty(tx.shape[0], EmbedDim, dtype: ScalarType.Float32);
        using (var input = Wrap(tx, TensorElementType.Int64))
        using (var output = Wrap(result, TensorElementType.Float))
            _session.Run(_run, [ClipOnnxNames.InputIds], [input], [ClipOnnxNames.TextFeatures], [output]);
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The full model's outputs as tensors.</summary>
    public (Tensor ImageFeatures, Tensor TextFeatures, Tensor LogitsPerImage, Tensor LogitsPerText) Run(Tensor pixels, Tensor ids)
    {
        Require(ClipOnnxKind.Full);
        using var scope = NewDisposeScope();
        var px = Prepare(pixels, ScalarType.Float32, 4, ClipOnnxNames.PixelValues);
        var tx = Prepare(ids, ScalarType.Int64, 2, ClipOnnxNames.InputIds);
        long n = px.shape[0], m = tx.shape[0];
        var img = empty(n, EmbedDim);
        var txt = empty(m, EmbedDim);
        var lpi = empty(n, m);
        var lpt = empty(m, n);
        using (var i1 = Wrap(px, TensorElementType.Float))
        using (var i2 = Wrap(tx, TensorElementType.Int64))
        using (var o1 = Wrap(img, TensorElementType.Float))
        using (var o2 = Wrap(txt, TensorElementType.Float))
        using (var o3 = Wrap(lpi, TensorElementType.Float))
        using (var o4 = Wrap(lpt, TensorElementType.Float))
            _session.Run(_run, FullInputs, [i1, i2], FullOutputs, [o1, o2, o3, o4]);
        return (img.MoveToOuterDisposeScope(), txt.MoveToOuterDisposeScope(), lpi.MoveToOuterDisposeScope(), lpt.MoveToOuterDisposeScope());
    }

    /// <summary>The input itself when it already is a contiguous CPU tensor of the right dtype, else a converted copy.</summary>
    internal static Tensor Prepare(Tensor t, ScalarType dtype, int rank, string name)
    {
        if (t.dim() != rank) throw new ArgumentException($"{name} must have rank {rank}, not {t.dim()}");
        if (t.device_type == TorchSharp.DeviceType.CPU && t.dtype == dtype && t.is_contiguous()) return t.alias();
        return t.to(dtype, CPU).contiguous();
    }

    /// <summary>An OrtValue over the tensor's own CPU memory (no copy); the tensor must outlive it.</summary>
    internal static unsafe OrtValue Wrap(Tensor t, TensorElementType type)
    {
        // Tensor.bytes is a span over libtorch's buffer, so the address taken here stays valid while the tensor lives.
        fixed (byte* p = t.bytes)
            return OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, type, t.shape, (IntPtr)p, t.NumberOfElements * t.ElementSize);
    }

    // ---------------------------------------------------------------- helpers

    long[] PixelShape(int batch) => [batch, 3, ImageSize, ImageSize];

    void Require(ClipOnnxKind kind)
    {
        if (Kind != kind)
            throw new InvalidOperationException($"this is a {Kind.ToString().ToLowerInvariant()} model; the call needs a {kind.ToString().ToLowerInvariant()} model");
    }

    static void CheckLength(long actual, long expected, string name)
    {
        if (actual != expected) throw new ArgumentException($"{name} has {actual} elements, expected {expected}");
    }

    /// <summary>
    /// Lets ORT optimise <paramref name="modelPath"/> with <paramref name="options"/> (default: all optimisations, CPU), saves
    /// the optimised graph and returns how often each op type occurs in it (contrib ops as <c>domain:OpType</c>, e.g.
    /// <c>com.microsoft:Attention</c>, <c>com.microsoft:SkipLayerNormalization</c>, <c>com.microsoft:QuickGelu</c>).
    /// </summary>
    public static IReadOnlyDictionary<string, int> OptimizedOpHistogram(string modelPath, OnnxClipSessionOptions? options = null)
    {
        var dir = Directory.CreateTempSubdirectory("clipgen-ort-opt-");
        try
        {
            var optimized = Path.Combine(dir.FullName, "optimized.onnx");
            var o = (options ?? new OnnxClipSessionOptions()) with { OptimizedModelFilePath = optimized };
            using (var so = o.Create())
            using (new InferenceSession(modelPath, so)) { }
            return OnnxModelInfo.OpHistogram(optimized);
        }
        finally
        {
            try { dir.Delete(recursive: true); } catch (IOException) { }
        }
    }

    public void Dispose()
    {
        _run.Dispose();
        _session.Dispose();
    }
}
