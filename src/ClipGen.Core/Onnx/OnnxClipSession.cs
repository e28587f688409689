using Microsoft.ML.OnnxRuntime;
using TensorElementType = Microsoft.ML.OnnxRuntime.Tensors.TensorElementType;

namespace ClipGen.Onnx;

/// <summary>Session settings for <see cref="OnnxClipSession"/>.</summary>
public sealed record OnnxClipSessionOptions
{
    /// <summary>Intra-op threads; 0 lets ONNX Runtime choose.</summary>
    public int IntraOpNumThreads { get; init; }

    /// <summary>Graph optimisation level (default: all, including ORT's transformer fusions).</summary>
    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;

    /// <summary>
    /// Image and text encoding split a batch into this many contiguous parts and run them at the same time on the one session
    /// (1, the default: one run per batch). On a CPU, <c>ConcurrentRuns = cores</c> with <c>IntraOpNumThreads = 1</c> keeps
    /// every core busy inside its own matrix multiplies instead of synchronising two threads on each op; see
    /// docs/benchmarks.md for what it gives. Each sample's features do not depend on the split beyond float rounding.
    /// </summary>
    public int ConcurrentRuns { get; init; } = 1;

    /// <summary>Where ORT writes the optimised graph, if anywhere.</summary>
    public string? OptimizedModelFilePath { get; init; }

    /// <summary>
    /// Last say over the <see cref="SessionOptions"/>, e.g. to append an execution provider in a GPU build:
    /// <c>o => o.AppendExecutionProvider_CUDA(0)</c>.
    /// </summary>
    public Action<SessionOptions>? Configure { get; init; }

    internal SessionOptions Create()
    {
        Limits.CheckThreads(ConcurrentRuns, nameof(ConcurrentRuns));
        if (IntraOpNumThreads != 0) Limits.CheckThreads(IntraOpNumThreads, nameof(IntraOpNumThreads));
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
/// TorchSharp CPU tensors are passed by pointer by the ClipGen package) and outputs are written straight into pre-allocated arrays or tensors,
/// so a call copies no data. Not thread-safe for concurrent calls on one instance's tensors; the ORT session itself is.
/// </summary>
public sealed class OnnxClipSession : IDisposable
{
    readonly InferenceSession _session;
    readonly RunOptions _run = new();

    /// <summary>The run options of single runs (the TorchSharp layer's full-model run uses them).</summary>
    internal RunOptions DefaultRun => _run;
    readonly int _concurrentRuns;

    public OnnxClipSession(string modelPath, OnnxClipSessionOptions? options = null)
    {
        _concurrentRuns = (options ?? new OnnxClipSessionOptions()).ConcurrentRuns;
        using var o = (options ?? new OnnxClipSessionOptions()).Create();
        _session = new InferenceSession(modelPath, o);
        (Kind, ImageSize, ContextLength, EmbedDim) = Describe(_session);
    }

    public OnnxClipSession(byte[] model, OnnxClipSessionOptions? options = null)
    {
        _concurrentRuns = (options ?? new OnnxClipSessionOptions()).ConcurrentRuns;
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

    /// <summary>The spec recorded in a ClipGen export's metadata (null for other models): it gives the vocabulary that ids are checked against.</summary>
    public Specs.ClipSpec? Spec
    {
        get
        {
            if (!_specRead)
            {
                _spec = Metadata.TryGetValue(ClipOnnxNames.MetaSpecYaml, out var yaml) ? Specs.SpecResolver.ResolveSingle("<onnx metadata>", yaml) : null;
                _specRead = true;
            }
            return _spec;
        }
    }

    Specs.ClipSpec? _spec;
    bool _specRead;

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
        if (batch == 0) return result;
        unsafe
        {
            fixed (float* src = pixels)
            fixed (float* dst = result)
                RunSplit(batch, (nint)src, PixelShape(batch), sizeof(float), TensorElementType.Float, ClipOnnxNames.PixelValues, (nint)dst, ClipOnnxNames.ImageFeatures);
        }
        return result;
    }

    /// <summary>Text features [batch, E] of input_ids [batch, C] (row-major).</summary>
    public float[] EncodeText(long[] ids, int batch)
    {
        Require(ClipOnnxKind.Text);
        CheckLength(ids.Length, (long)batch * ContextLength, ClipOnnxNames.InputIds);
        if (Spec is { } spec) Backends.ClipInputs.CheckTokens(spec, ids);
        var result = new float[batch * EmbedDim];
        if (batch == 0) return result;
        unsafe
        {
            fixed (long* src = ids)
            fixed (float* dst = result)
                RunSplit(batch, (nint)src, [batch, ContextLength], sizeof(long), TensorElementType.Int64, ClipOnnxNames.InputIds, (nint)dst, ClipOnnxNames.TextFeatures);
        }
        return result;
    }

    /// <summary>The full model's four outputs.</summary>
    public ClipOnnxOutputs Run(float[] pixels, int imageBatch, long[] ids, int textBatch)
    {
        Require(ClipOnnxKind.Full);
        CheckLength(pixels.Length, (long)imageBatch * 3 * ImageSize * ImageSize, ClipOnnxNames.PixelValues);
        CheckLength(ids.Length, (long)textBatch * ContextLength, ClipOnnxNames.InputIds);
        if (Spec is { } spec) Backends.ClipInputs.CheckTokens(spec, ids);
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

    internal static readonly string[] FullInputs = [ClipOnnxNames.PixelValues, ClipOnnxNames.InputIds];
    internal static readonly string[] FullOutputs = [ClipOnnxNames.ImageFeatures, ClipOnnxNames.TextFeatures, ClipOnnxNames.LogitsPerImage, ClipOnnxNames.LogitsPerText];

    // ---------------------------------------------------------------- batch splitting

    /// <summary>
    /// Runs the encoder on [0, batch) — the input at <paramref name="input"/> with shape <paramref name="inputShape"/>, the
    /// float output [batch, E] at <paramref name="output"/>, both pinned by the caller — split into up to
    /// <see cref="OnnxClipSessionOptions.ConcurrentRuns"/> contiguous parts run at the same time (the session is thread-safe).
    /// </summary>
    internal void RunSplit(int batch, nint input, long[] inputShape, int elementSize, TensorElementType inputType, string inputName, nint output, string outputName)
    {
        if (batch == 0) return; // empty in, empty out (ORT itself fails on some ops with a zero batch)
        long inRowBytes = elementSize;
        for (int d = 1; d < inputShape.Length; d++) inRowBytes *= inputShape[d];
        long outRowBytes = (long)EmbedDim * sizeof(float);
        int parts = Math.Max(1, Math.Min(_concurrentRuns, batch));
        if (parts == 1)
        {
            RunPart(0, batch, _run);
            return;
        }
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
        {
            long start = (long)batch * p / parts, end = (long)batch * (p + 1) / parts;
            using var run = new RunOptions();
            RunPart(start, end - start, run);
        });

        void RunPart(long start, long count, RunOptions run)
        {
            var shape = (long[])inputShape.Clone();
            shape[0] = count;
            using var i = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, inputType, shape, input + (nint)(start * inRowBytes), count * inRowBytes);
            using var o = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, [count, EmbedDim], output + (nint)(start * outRowBytes), count * outRowBytes);
            _session.Run(run, [inputName], [i], [outputName], [o]);
        }
    }

    // ---------------------------------------------------------------- helpers

    long[] PixelShape(int batch) => [batch, 3, ImageSize, ImageSize];

    internal void Require(ClipOnnxKind kind)
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
