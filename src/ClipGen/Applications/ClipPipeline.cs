using ClipGen.Backends;
using ClipGen.Checkpoints;
using ClipGen.Imaging;
using ClipGen.Modeling;
using ClipGen.Specs;
using ClipGen.Text;
using static TorchSharp.torch;

namespace ClipGen.Applications;

/// <summary>An image that could not be read or decoded, and why.</summary>
public sealed record SkippedImage(string Path, string Error);

/// <summary>How <see cref="ClipPipeline"/> loads a model (everything but the model and its weights).</summary>
public sealed record ClipPipelineOptions
{
    /// <summary>The engine: TorchSharp (default) or ONNX Runtime.</summary>
    public BackendKind Backend { get; init; } = BackendKind.Torch;

    /// <summary>Threads, concurrent runs, precision and ONNX Runtime settings of the backend.</summary>
    public ClipBackendOptions? BackendOptions { get; init; }

    /// <summary>The tokenizer's vocabulary file (or a folder holding it); null looks beside the weights and where <see cref="Vocabulary.Resolve"/> looks.</summary>
    public string? VocabularyPath { get; init; }

    /// <summary>Where published weights are cached; null is $CLIPGEN_CACHE, else the XDG cache folder.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>A mirror that serves the download URLs' paths (tests use a local server); null downloads from the published URLs.</summary>
    public Uri? DownloadUrlBase { get; init; }

    /// <summary>Receives one line for each assumption made while loading (an activation the file does not record, …).</summary>
    public Action<string>? Notes { get; init; }
}

/// <summary>
/// A loaded CLIP model (behind an <see cref="IClipBackend"/>: TorchSharp or ONNX Runtime) with its image
/// preprocessing and tokenizer: everything needed to go from image files and texts to normalised embeddings.
/// </summary>
public sealed class ClipPipeline : IDisposable
{
    readonly bool _ownsBackend;
    readonly ClipModule? _ownedModel;
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
    public ClipPipeline(IClipBackend backend, Lazy<ITextTokenizer> tokenizer, ImagePreprocessor? preprocessor = null, bool ownsBackend = false, ClipModule? ownedModel = null)
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
    /// Loads a model with its weights on a backend, with the spec's preprocessing and tokenizer. <paramref name="model"/>
    /// is a name, alias or spec.yaml; null infers the spec from the checkpoint. The weights may be any checkpoint
    /// format ClipGen reads (strict: missing, unexpected or mis-shaped keys are a <see cref="ClipGenException"/>).
    /// The vocabulary (for <c>clip_bpe</c>) is found by <see cref="Vocabulary.Resolve"/>: <paramref name="vocabPath"/>,
    /// $CLIPGEN_VOCAB, the weights' folder, the download cache; it is loaded on the first use of text.
    /// </summary>
    public static ClipPipeline Load(string? model, string weightsPath, string? vocabPath = null, BackendKind backend = BackendKind.Torch, Action<string>? notes = null) =>
        Load(model, weightsPath, vocabPath, backend, notes, null);

    /// <summary>As <see cref="Load(string?, string, string?, BackendKind, Action{string}?)"/>, with the backend's options (threads, concurrent runs, ORT session settings).</summary>
    public static ClipPipeline Load(string? model, string weightsPath, string? vocabPath, BackendKind backend, Action<string>? notes, ClipBackendOptions? backendOptions)
    {
        ArgumentNullException.ThrowIfNull(weightsPath);
        // The spec first, so that an unknown model is reported before the weights are looked at.
        if (model is not null) ClipModelFactory.ResolveSpec(model);
        if (!File.Exists(weightsPath) && !Directory.Exists(weightsPath)) throw new ClipGenException($"weights not found: {weightsPath}");
        var options = new LoadOptions { Notes = notes };
        var loaded = model is null ? ClipModelFactory.Load(weightsPath, options) : ClipModelFactory.Load(model, weightsPath, options);
        return FromModel(loaded, weightsPath, vocabPath, backend, backendOptions);
    }

    /// <summary>
    /// Downloads the published weights <paramref name="tag"/> of <paramref name="model"/> (open_clip's pretrained tags: <c>openai</c>,
    /// <c>laion2b_s34b_b79k</c>, <c>webli</c>, …; see the spec's <c>pretrained</c> entries), or finds them in the cache verified, then
    /// loads them as <see cref="Load(string?, string, string?, BackendKind, Action{string}?)"/> does. The cache is
    /// <see cref="ClipPipelineOptions.CacheDirectory"/>, else $CLIPGEN_CACHE, else the XDG cache folder; a download resumes where an
    /// earlier one stopped, and is checked against the sha256 pinned in the spec or reported by the Hugging Face Hub.
    /// </summary>
    /// <exception cref="ClipGenException">An unknown model or tag, a failed or unverifiable download, or weights that do not fit.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public static async Task<ClipPipeline> LoadPretrainedAsync(string model, string tag, ClipPipelineOptions? options = null,
        IProgress<Downloads.DownloadProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tag);
        options ??= new ClipPipelineOptions();
        var spec = ClipModelFactory.ResolveSpec(model);
        var pretrained = Downloads.ModelDownloader.Select(spec, tag);
        Downloads.DownloadedCheckpoint downloaded;
        using (var downloader = new Downloads.ModelDownloader(options.CacheDirectory, urlBase: options.DownloadUrlBase))
            downloaded = await downloader.DownloadAsync(spec, pretrained, progress is null ? null : progress.Report, cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        // A hf or open_clip download is a complete folder (configs written from the spec); other formats are one file.
        var weights = downloaded.Configs.Count > 0 ? downloaded.Folder : downloaded.Path;
        return await Task.Run(() => Load(ClipModelFactory.IsSpecPath(model) ? model : spec.Name, weights, options.VocabularyPath, options.Backend,
            options.Notes, options.BackendOptions), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <see cref="Load(string?, string, string?, BackendKind, Action{string}?, ClipBackendOptions?)"/> off the calling thread (reading
    /// the weights and building the model take seconds for large models); <paramref name="cancellationToken"/> stops it before it starts.
    /// </summary>
    public static Task<ClipPipeline> LoadAsync(string? model, string weightsPath, ClipPipelineOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new ClipPipelineOptions();
        return Task.Run(() => Load(model, weightsPath, options.VocabularyPath, options.Backend, options.Notes, options.BackendOptions), cancellationToken);
    }

    /// <summary>A pipeline over a loaded model, which it then owns.</summary>
    internal static ClipPipeline FromModel(ClipModule model, string? weightsPath, string? vocabPath, BackendKind backend, ClipBackendOptions? backendOptions = null)
    {
        IClipBackend? b = null;
        try
        {
            b = ClipBackends.Create(model, backend, backendOptions);
            var spec = model.Spec;
            var tokenizer = new Lazy<ITextTokenizer>(() => CreateTokenizer(spec, vocabPath, weightsPath));
            if (backend == BackendKind.Torch) return new ClipPipeline(b, tokenizer, null, ownsBackend: true, ownedModel: model);
            model.Dispose(); // the ONNX backend holds its own copy of the weights
            return new ClipPipeline(b, tokenizer, null, ownsBackend: true);
        }
        catch
        {
            b?.Dispose();
            model.Dispose();
            throw;
        }
    }

    /// <summary>The spec's tokenizer, with the vocabulary found as <see cref="Load"/> does.</summary>
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
    public Tensor PreprocessImages(IReadOnlyList<string> paths) => Preprocessor.PreprocessToTensor(paths);

    /// <summary>
    /// Preprocessed pixels of the images that could be read, in order, and the ones that could not (decoding errors
    /// and I/O errors); runs in parallel.
    /// </summary>
    public (Tensor Pixels, IReadOnlyList<string> Loaded, IReadOnlyList<SkippedImage> Skipped) TryPreprocessImages(IReadOnlyList<string> paths)
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
        return (tensor(data, [loaded.Count, 3, s, s], ScalarType.Float32), loaded, skipped);
    }

    /// <summary>Token ids [N, context_length] (int64), truncated like <c>clip.tokenize(truncate=True)</c>.</summary>
    public Tensor Tokenize(IReadOnlyList<string> texts) => Tokenizer.EncodeToTensor(texts, Spec.Text.ContextLength);

    // ------------------------------------------------------------------ embeddings

    /// <summary>L2-normalised image embeddings [N, D] of pixels [N, 3, R, R], in batches of <see cref="BatchSize"/>.</summary>
    public Tensor EmbedImages(Tensor pixelValues) => Batched(pixelValues.to(ScalarType.Float32), Backend.EncodeImage);

    /// <summary>L2-normalised image embeddings [N, D] of image files; an unreadable image is a <see cref="ClipGenException"/>.</summary>
    public Tensor EmbedImages(IReadOnlyList<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var parts = new List<Tensor>();
        try
        {
            for (int start = 0; start < paths.Count; start += BatchSize)
            {
                var chunk = paths.Skip(start).Take(BatchSize).ToList();
                using var px = PreprocessImages(chunk);
                parts.Add(EmbedImages(px));
            }
            return parts.Count == 0 ? zeros(0, Dimensions) : cat(parts, 0);
        }
        finally
        {
            foreach (var p in parts) p.Dispose();
        }
    }

    /// <summary>L2-normalised text embeddings [N, D] of token ids [N, L].</summary>
    public Tensor EmbedTokens(Tensor inputIds) => Batched(inputIds.to(ScalarType.Int64), Backend.EncodeText);

    /// <summary>L2-normalised text embeddings [N, D] of texts.</summary>
    public Tensor EmbedTexts(IReadOnlyList<string> texts)
    {
        using var ids = Tokenize(texts);
        return EmbedTokens(ids);
    }

    /// <summary>Rows scaled to unit length (a zero row stays zero).</summary>
    public static Tensor Normalize(Tensor features)
    {
        using var scope = NewDisposeScope();
        return (features / features.norm(1, keepdim: true).clamp_min(1e-12)).MoveToOuterDisposeScope();
    }

    Tensor Batched(Tensor input, Func<Tensor, Tensor> encode)
    {
        ArgumentNullException.ThrowIfNull(input);
        using var scope = NewDisposeScope();
        long n = input.shape[0];
        if (n == 0) return zeros(0, Dimensions).MoveToOuterDisposeScope();
        var parts = new List<Tensor>();
        for (long start = 0; start < n; start += BatchSize)
            parts.Add(Normalize(encode(input.narrow(0, start, Math.Min(BatchSize, n - start)))));
        var result = parts.Count == 1 ? parts[0] : cat(parts, 0);
        return result.MoveToOuterDisposeScope();
    }

    // ------------------------------------------------------------------ applications

    /// <summary>A zero-shot classifier over <paramref name="labels"/> (templates: the model family's default, <see cref="Templates.Default"/>).</summary>
    public ZeroShotClassifier CreateClassifier(IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null) =>
        new(this, labels, templates);

    public void Dispose()
    {
        if (_ownsBackend) Backend.Dispose();
        _ownedModel?.Dispose();
    }
}

/// <summary>
/// A <see cref="ClipPipeline"/> for a generated model: its inputs and embeddings carry the model's type, so that
/// pixels or embeddings of one model cannot be given to another.
/// </summary>
public sealed class ClipPipeline<TModel> : IDisposable where TModel : ClipModule, IClipModel<TModel>
{
    /// <summary>Wraps an untyped pipeline whose spec is <typeparamref name="TModel"/>'s.</summary>
    public ClipPipeline(ClipPipeline untyped)
    {
        ArgumentNullException.ThrowIfNull(untyped);
        if (untyped.Spec != TModel.ModelSpec)
            throw new ClipGenException($"the pipeline runs '{untyped.Spec.Name}', not {typeof(TModel).Name} ('{TModel.ModelSpec.Name}')");
        Untyped = untyped;
    }

    /// <summary>Creates <typeparamref name="TModel"/>, loads the weights strictly, and adds the preprocessing and tokenizer.</summary>
    public static ClipPipeline<TModel> Load(string weightsPath, string? vocabPath = null, BackendKind backend = BackendKind.Torch)
    {
        ArgumentNullException.ThrowIfNull(weightsPath);
        if (!File.Exists(weightsPath) && !Directory.Exists(weightsPath)) throw new ClipGenException($"weights not found: {weightsPath}");
        var pipeline = ClipPipeline.FromModel(ClipModelFactory.Load(TModel.ModelSpec, weightsPath), weightsPath, vocabPath, backend);
        try
        {
            return new ClipPipeline<TModel>(pipeline);
        }
        catch
        {
            pipeline.Dispose();
            throw;
        }
    }

    /// <summary>The untyped pipeline (for run-time code paths).</summary>
    public ClipPipeline Untyped { get; }

    public int BatchSize { get => Untyped.BatchSize; set => Untyped.BatchSize = value; }

    /// <summary>Preprocessed pixels of image files.</summary>
    public Pixels<TModel> Preprocess(IReadOnlyList<string> paths) => Pixels<TModel>.FromTensor(Untyped.PreprocessImages(paths));

    /// <summary>Token ids of texts.</summary>
    public TokenIds<TModel> Tokenize(IReadOnlyList<string> texts) => TokenIds<TModel>.FromTensor(Untyped.Tokenize(texts));

    /// <summary>Normalised image embeddings of pixels.</summary>
    public ImageEmbeddings<TModel> EmbedImages(Pixels<TModel> pixels) => new(Untyped.EmbedImages(pixels.Tensor));

    /// <summary>Normalised image embeddings of image files.</summary>
    public ImageEmbeddings<TModel> EmbedImages(IReadOnlyList<string> paths) => new(Untyped.EmbedImages(paths));

    /// <summary>Normalised text embeddings of token ids.</summary>
    public TextEmbeddings<TModel> EmbedTexts(TokenIds<TModel> ids) => new(Untyped.EmbedTokens(ids.Tensor));

    /// <summary>Normalised text embeddings of texts.</summary>
    public TextEmbeddings<TModel> EmbedTexts(IReadOnlyList<string> texts) => new(Untyped.EmbedTexts(texts));

    /// <summary>A typed zero-shot classifier.</summary>
    public ZeroShotClassifier<TModel> CreateClassifier(IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null) =>
        new(this, labels, templates);

    public void Dispose() => Untyped.Dispose();
}
