using ClipGen.Backends;
using ClipGen.Imaging;
using ClipGen.Modeling;
using ClipGen.Specs;
using ClipGen.Text;
using Microsoft.Extensions.Logging;

namespace ClipGen.Applications;

/// <summary>An image that could not be read or decoded, and why.</summary>
public sealed record SkippedImage(string Path, string Error);

/// <summary>How <see cref="ClipPipeline"/> loads a model (everything but the model and its weights).</summary>
public sealed record ClipPipelineOptions
{
    /// <summary>The engine when loading weights: TorchSharp (default) or ONNX Runtime (<see cref="ClipPipeline.Open"/> always runs ONNX Runtime).</summary>
    public BackendKind Backend { get; init; } = BackendKind.Torch;

    /// <summary>Threads, concurrent runs, precision and ONNX Runtime settings of the backend.</summary>
    public ClipBackendOptions? BackendOptions { get; init; }

    /// <summary>The tokenizer's vocabulary file (or a folder holding it); null looks beside the weights and where <see cref="Vocabulary.Resolve"/> looks.</summary>
    public string? VocabularyPath { get; init; }

    /// <summary>Where published weights are cached; null is $CLIPGEN_CACHE, else the XDG cache folder.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>A mirror that serves the download URLs' paths (tests use a local server); null downloads from the published URLs.</summary>
    public Uri? DownloadUrlBase { get; init; }

    /// <summary>Told (at Information) of each assumption made while loading: an activation the file does not record, an inferred spec, ….</summary>
    public ILogger? Logger { get; init; }
}

/// <summary>
/// A loaded CLIP model (behind an <see cref="IClipBackend"/>: TorchSharp or ONNX Runtime) with its image
/// preprocessing and tokenizer: everything needed to go from image files and texts to normalised embeddings.
/// </summary>
public sealed class ClipPipeline : IDisposable
{
    readonly bool _ownsBackend;
    readonly IDisposable? _ownedModel;
    readonly Lazy<ITextTokenizer> _tokenizer;
    int _batchSize = 32;

    /// <summary>Combines a backend with a tokenizer and (by default) the spec's preprocessing.</summary>
    public ClipPipeline(IClipBackend backend, ITextTokenizer tokenizer, ImagePreprocessor? preprocessor = null, bool ownsBackend = false)
        : this(backend, new Lazy<ITextTokenizer>(tokenizer ?? throw new ArgumentNullException(nameof(tokenizer))), preprocessor, ownsBackend, null) { }

    /// <summary>
    /// As the other constructor, with the tokenizer made on first use of text (so that image-only work never needs
    /// the vocabulary). <paramref name="ownedModel"/>, if given, is disposed with the pipeline (the Torch backend does
    /// not own its model).
    /// </summary>
    public ClipPipeline(IClipBackend backend, Lazy<ITextTokenizer> tokenizer, ImagePreprocessor? preprocessor = null, bool ownsBackend = false, IDisposable? ownedModel = null)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(tokenizer);
        Backend = backend;
        _tokenizer = tokenizer;
        Preprocessor = preprocessor ?? backend.Spec.CreatePreprocessor();
        if (Preprocessor.ImageSize != backend.Spec.Vision.ImageSize)
            throw new ClipGenException($"the preprocessor makes {Preprocessor.ImageSize}px images but {backend.Spec.Name} takes {backend.Spec.Vision.ImageSize}px");
        _ownsBackend = ownsBackend;
        _ownedModel = ownedModel;
    }

    /// <summary>
    /// Opens a model exported by ClipGen (<c>clipgen export-onnx</c>: a folder with <c>image.onnx</c> and <c>text.onnx</c>) on
    /// ONNX Runtime. The spec, logit scale, preprocessing and tokenizer kind come from the files' metadata; the vocabulary (for
    /// <c>clip_bpe</c>) is found as <see cref="Vocabulary.Resolve"/> does (<see cref="ClipPipelineOptions.VocabularyPath"/>,
    /// $CLIPGEN_VOCAB, the export folder, the download cache) on the first use of text.
    /// </summary>
    public static ClipPipeline Open(string onnxDirectory, ClipPipelineOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(onnxDirectory);
        options ??= new ClipPipelineOptions();
        if (!Directory.Exists(onnxDirectory)) throw new ClipGenException($"ONNX export folder not found: {onnxDirectory}");
        var backend = OnnxClipBackend.Open(onnxDirectory, options.BackendOptions);
        try
        {
            var spec = backend.Spec;
            var tokenizer = new Lazy<ITextTokenizer>(() => CreateTokenizer(spec, options.VocabularyPath, onnxDirectory));
            return new ClipPipeline(backend, tokenizer, null, ownsBackend: true);
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    /// <summary>The spec's tokenizer, with the vocabulary found beside <paramref name="weightsPath"/> and where <see cref="Vocabulary.Resolve"/> looks.</summary>
    public static ITextTokenizer CreateTokenizer(ClipSpec spec, string? vocabPath, string? weightsPath) => spec.Tokenizer.Kind switch
    {
        TextTokenizers.ClipBpe => spec.CreateTokenizer(Vocabulary.Resolve(vocabPath, weightsPath)),
        // SentencePiece and WordPiece files come with the weights (the Hub repos publish them side by side): without an explicit
        // file, the spec's tokenizer.file is looked for beside the weights.
        TextTokenizers.SentencePiece or TextTokenizers.WordPiece when string.IsNullOrEmpty(vocabPath) && weightsPath is not null =>
            spec.CreateTokenizer(Directory.Exists(weightsPath) ? weightsPath : Path.GetDirectoryName(Path.GetFullPath(weightsPath))),
        _ => spec.CreateTokenizer(vocabPath),
    };

    /// <summary>The engine running the model.</summary>
    public IClipBackend Backend { get; }
    /// <summary>The tokenizer (loaded now if it was not yet).</summary>
    public ITextTokenizer Tokenizer => _tokenizer.Value;
    public ImagePreprocessor Preprocessor { get; }
    public ClipSpec Spec => Backend.Spec;

    /// <summary>Joint embedding width.</summary>
    public int Dimensions => Spec.EmbedDim;

    /// <summary>Images (or texts) per forward pass in the Embed methods (default 32).</summary>
    public int BatchSize
    {
        get => _batchSize;
        set => _batchSize = value > 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "the batch size must be positive");
    }

    // ------------------------------------------------------------------ inputs

    /// <summary>Preprocessed pixels [N, 3, R, R] of image files; an unreadable image is a <see cref="ClipGenException"/>.</summary>
    public ArrayTensor<float> PreprocessImages(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        long s = Preprocessor.ImageSize;
        return new ArrayTensor<float>(Preprocessor.PreprocessBatch(paths), paths.Count, 3, s, s);
    }

    /// <summary>
    /// Preprocessed pixels of the images that could be read, in order, and the ones that could not (decoding errors
    /// and I/O errors); runs in parallel.
    /// </summary>
    public (ArrayTensor<float> Pixels, IReadOnlyList<string> Loaded, IReadOnlyList<SkippedImage> Skipped) TryPreprocessImages(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        int per = Preprocessor.ValuesPerImage;
        var buffers = new float[paths.Count][];
        var errors = new string?[paths.Count];
        Parallel.For(0, paths.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            try { buffers[i] = Preprocessor.Preprocess(paths[i]); }
            catch (ClipGenException e) { errors[i] = e.Message; }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException) { errors[i] = $"{paths[i]}: {e.Message}"; }
        });
        var loaded = new List<string>();
        var skipped = new List<SkippedImage>();
        for (int i = 0; i < paths.Count; i++)
        {
            if (errors[i] is { } err) skipped.Add(new SkippedImage(paths[i], err));
            else loaded.Add(paths[i]);
        }
        var data = new float[(long)loaded.Count * per];
        int row = 0;
        for (int i = 0; i < paths.Count; i++)
            if (errors[i] is null) buffers[i].CopyTo(data.AsSpan(row++ * per, per));
        long s = Preprocessor.ImageSize;
        return (new ArrayTensor<float>(data, loaded.Count, 3, s, s), loaded, skipped);
    }

    /// <summary>Token ids [N, context_length] (int64), truncated like <c>clip.tokenize(truncate=True)</c>.</summary>
    public ArrayTensor<long> Tokenize(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        int c = Spec.Text.ContextLength;
        return new ArrayTensor<long>(Tokenizer.EncodeBatch(texts, c), texts.Count, c);
    }

    // ------------------------------------------------------------------ embeddings

    /// <summary>L2-normalised image embeddings [N, D] of pixels [N, 3, R, R], in batches of <see cref="BatchSize"/>.</summary>
    public ArrayTensor<float> EmbedImages(ArrayTensor<float> pixelValues) => Batched(pixelValues, Backend.EncodeImage);

    /// <summary>L2-normalised image embeddings [N, D] of image files; an unreadable image is a <see cref="ClipGenException"/>.</summary>
    public ArrayTensor<float> EmbedImages(IReadOnlyList<string> paths) => EmbedImageFiles(paths, CancellationToken.None);

    /// <summary>
    /// <see cref="EmbedImages(IReadOnlyList{string})"/> off the calling thread; <paramref name="cancellationToken"/> is checked
    /// before each batch (a batch already running finishes first).
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<ArrayTensor<float>> EmbedImagesAsync(IReadOnlyList<string> paths, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return Task.Run(() => EmbedImageFiles(paths, cancellationToken), cancellationToken);
    }

    ArrayTensor<float> EmbedImageFiles(IReadOnlyList<string> paths, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(paths);
        if (paths.Count == 0) return new ArrayTensor<float>([], 0, Dimensions);
        var parts = new List<ArrayTensor<float>>();
        for (int start = 0; start < paths.Count; start += BatchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = paths.Skip(start).Take(BatchSize).ToList();
            parts.Add(EmbedImages(PreprocessImages(chunk)));
        }
        return parts.Count == 1 ? parts[0] : ArrayTensor<float>.Concat(parts, Dimensions);
    }

    /// <summary>L2-normalised text embeddings [N, D] of token ids [N, L].</summary>
    public ArrayTensor<float> EmbedTokens(ArrayTensor<long> inputIds) => Batched(inputIds, Backend.EncodeText);

    /// <summary>L2-normalised text embeddings [N, D] of texts.</summary>
    public ArrayTensor<float> EmbedTexts(IReadOnlyList<string> texts) => EmbedTokens(Tokenize(texts));

    /// <summary>
    /// <see cref="EmbedTexts(IReadOnlyList{string})"/> off the calling thread; <paramref name="cancellationToken"/> is checked
    /// before each batch.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public Task<ArrayTensor<float>> EmbedTextsAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        return Task.Run(() =>
        {
            var ids = Tokenize(texts);
            if (ids.Rows == 0) return new ArrayTensor<float>([], 0, Dimensions);
            var parts = new List<ArrayTensor<float>>();
            for (int start = 0; start < ids.Rows; start += BatchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                parts.Add(Normalize(Backend.EncodeText(ids.Slice(start, Math.Min(BatchSize, ids.Rows - start)))));
            }
            return parts.Count == 1 ? parts[0] : ArrayTensor<float>.Concat(parts, Dimensions);
        }, cancellationToken);
    }

    /// <summary>Rows scaled to unit length (a zero row stays zero), in place; returns <paramref name="features"/>.</summary>
    public static ArrayTensor<float> Normalize(ArrayTensor<float> features)
    {
        ArgumentNullException.ThrowIfNull(features);
        for (int i = 0; i < features.Rows; i++)
        {
            var row = features.Row(i);
            double sum = 0;
            foreach (var v in row) sum += (double)v * v;
            float norm = Math.Max((float)Math.Sqrt(sum), 1e-12f);
            for (int j = 0; j < row.Length; j++) row[j] /= norm;
        }
        return features;
    }

    ArrayTensor<float> Batched<T>(ArrayTensor<T> input, Func<ArrayTensor<T>, ArrayTensor<float>> encode) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(input);
        int n = input.Rows;
        if (n == 0) return new ArrayTensor<float>([], 0, Dimensions);
        if (n <= BatchSize) return Normalize(encode(input));
        var parts = new List<ArrayTensor<float>>();
        for (int start = 0; start < n; start += BatchSize)
            parts.Add(Normalize(encode(input.Slice(start, Math.Min(BatchSize, n - start)))));
        return ArrayTensor<float>.Concat(parts, Dimensions);
    }

    // ------------------------------------------------------------------ applications

    /// <summary>A zero-shot classifier over <paramref name="labels"/> (templates: the model family's default, <see cref="Templates.Default"/>).</summary>
    public ZeroShotClassifier CreateClassifier(IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null) =>
        new(this, labels, templates);

    /// <summary>Disposes what the pipeline owns; a second call does nothing.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (_ownsBackend) Backend.Dispose();
        _ownedModel?.Dispose();
    }

    int _disposed;
}
