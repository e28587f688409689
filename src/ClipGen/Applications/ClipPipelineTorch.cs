using ClipGen.Backends;
using ClipGen.Checkpoints;
using ClipGen.Modeling;
using ClipGen.Text;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace ClipGen.Applications;

/// <summary>
/// <see cref="ClipPipeline"/> over TorchSharp: loading weights (any checkpoint format, or published weights by tag) into a
/// TorchSharp model on either backend, and tensor overloads of the embedding calls.
/// </summary>
public static class ClipPipelineTorch
{
    extension(ClipPipeline)
    {
        /// <summary>
        /// Loads a model with its weights on a backend, with the spec's preprocessing and tokenizer. <paramref name="model"/>
        /// is a name, alias or spec.yaml; null infers the spec from the checkpoint. The weights may be any checkpoint
        /// format ClipGen reads (strict: missing, unexpected or mis-shaped keys are a <see cref="ClipGenException"/>).
        /// The vocabulary (for <c>clip_bpe</c>) is found by <see cref="Vocabulary.Resolve"/>: <paramref name="vocabPath"/>,
        /// $CLIPGEN_VOCAB, the weights' folder, the download cache; it is loaded on the first use of text.
        /// </summary>
        public static ClipPipeline Load(string? model, string weightsPath, string? vocabPath = null, BackendKind backend = BackendKind.Torch, ILogger? logger = null) =>
            ClipPipeline.Load(model, weightsPath, vocabPath, backend, logger, null);

        /// <summary>As <see cref="Load(string?, string, string?, BackendKind, ILogger?)"/>, with the backend's options (threads, concurrent runs, ORT session settings).</summary>
        public static ClipPipeline Load(string? model, string weightsPath, string? vocabPath, BackendKind backend, ILogger? logger, ClipBackendOptions? backendOptions)
        {
            ArgumentNullException.ThrowIfNull(weightsPath);
            // The spec first, so that an unknown model is reported before the weights are looked at.
            if (model is not null) ClipModelFactory.ResolveSpec(model);
            if (!File.Exists(weightsPath) && !Directory.Exists(weightsPath)) throw new ClipGenException($"weights not found: {weightsPath}");
            var options = new LoadOptions { Logger = logger };
            var loaded = model is null ? ClipModelFactory.Load(weightsPath, options) : ClipModelFactory.Load(model, weightsPath, options);
            return ClipPipeline.FromModel(loaded, weightsPath, vocabPath, backend, backendOptions);
        }

        /// <summary>
        /// Downloads the published weights <paramref name="tag"/> of <paramref name="model"/> (open_clip's pretrained tags: <c>openai</c>,
        /// <c>laion2b_s34b_b79k</c>, <c>webli</c>, …; see the spec's <c>pretrained</c> entries), or finds them in the cache verified, then
        /// loads them as <see cref="Load(string?, string, string?, BackendKind, ILogger?)"/> does. The cache is
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
            return await Task.Run(() => ClipPipeline.Load(ClipModelFactory.IsSpecPath(model) ? model : spec.Name, weights, options.VocabularyPath, options.Backend,
                options.Logger, options.BackendOptions), cancellationToken).ConfigureAwait(false);
        }

        /// <summary>
        /// <see cref="Load(string?, string, string?, BackendKind, ILogger?, ClipBackendOptions?)"/> off the calling thread (reading
        /// the weights and building the model take seconds for large models); <paramref name="cancellationToken"/> stops it before it starts.
        /// </summary>
        public static Task<ClipPipeline> LoadAsync(string? model, string weightsPath, ClipPipelineOptions? options = null, CancellationToken cancellationToken = default)
        {
            options ??= new ClipPipelineOptions();
            return Task.Run(() => ClipPipeline.Load(model, weightsPath, options.VocabularyPath, options.Backend, options.Logger, options.BackendOptions), cancellationToken);
        }

        /// <summary>A pipeline over a loaded model, which it then owns (the ClipGen package's own loaders use it).</summary>
        public static ClipPipeline FromModel(ClipModule model, string? weightsPath, string? vocabPath, BackendKind backend, ClipBackendOptions? backendOptions = null)
        {
            IClipBackend? b = null;
            try
            {
                b = ClipBackends.Create(model, backend, backendOptions);
                var spec = model.Spec;
                var tokenizer = new Lazy<ITextTokenizer>(() => ClipPipeline.CreateTokenizer(spec, vocabPath, weightsPath));
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
    }

    /// <summary>L2-normalised image embeddings [N, D] of a pixel tensor [N, 3, R, R], in batches of <see cref="ClipPipeline.BatchSize"/>.</summary>
    public static Tensor EmbedImages(this ClipPipeline pipeline, Tensor pixelValues)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        using var input = pixelValues.to(ScalarType.Float32);
        return Batched(pipeline, input, pipeline.Backend.EncodeImage);
    }

    /// <summary>L2-normalised text embeddings [N, D] of an id tensor [N, L].</summary>
    public static Tensor EmbedTokens(this ClipPipeline pipeline, Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        using var input = inputIds.to(ScalarType.Int64);
        return Batched(pipeline, input, pipeline.Backend.EncodeText);
    }

    extension(ClipPipeline)
    {
        /// <summary>Rows scaled to unit length (a zero row stays zero).</summary>
        public static Tensor Normalize(Tensor features)
        {
            using var scope = NewDisposeScope();
            return (features / features.norm(1, keepdim: true).clamp_min(1e-12)).MoveToOuterDisposeScope();
        }
    }

    static Tensor Batched(ClipPipeline pipeline, Tensor input, Func<Tensor, Tensor> encode)
    {
        using var scope = NewDisposeScope();
        long n = input.shape[0];
        if (n == 0) return zeros(0, pipeline.Dimensions).MoveToOuterDisposeScope();
        var parts = new List<Tensor>();
        for (long start = 0; start < n; start += pipeline.BatchSize)
            parts.Add(ClipPipeline.Normalize(encode(input.narrow(0, start, Math.Min(pipeline.BatchSize, n - start)))));
        var result = parts.Count == 1 ? parts[0] : cat(parts, 0);
        return result.MoveToOuterDisposeScope();
    }
}

/// <summary><see cref="ZeroShotClassifier"/> over TorchSharp tensors.</summary>
public static class ZeroShotClassifierTorch
{
    /// <summary>Logits [N, classes] of image embeddings [N, D].</summary>
    public static Tensor LogitsOfEmbeddings(this ZeroShotClassifier classifier, Tensor imageEmbeddings)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        return classifier.LogitsOfEmbeddings(imageEmbeddings.ToFloatArray()).ToTensor();
    }

    /// <summary>Logits [N, classes] of a pixel tensor [N, 3, R, R].</summary>
    public static Tensor Logits(this ZeroShotClassifier classifier, Tensor pixelValues)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        using var emb = classifier.Pipeline.EmbedImages(pixelValues);
        return classifier.LogitsOfEmbeddings(emb);
    }

    /// <summary>Probabilities per image of normalised image embeddings [N, D].</summary>
    public static IReadOnlyList<ZeroShotResult> ClassifyEmbeddings(this ZeroShotClassifier classifier, Tensor imageEmbeddings, IReadOnlyList<string?>? images = null)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        return classifier.ClassifyEmbeddings(imageEmbeddings.ToFloatArray(), images);
    }

    /// <summary>Classifies a pixel tensor [N, 3, R, R].</summary>
    public static IReadOnlyList<ZeroShotResult> Classify(this ZeroShotClassifier classifier, Tensor pixelValues)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        using var emb = classifier.Pipeline.EmbedImages(pixelValues);
        return classifier.ClassifyEmbeddings(emb);
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
    public Pixels<TModel> Preprocess(IReadOnlyList<string> paths) => Pixels<TModel>.FromTensor(Untyped.PreprocessImages(paths).ToTensor());

    /// <summary>Token ids of texts.</summary>
    public TokenIds<TModel> Tokenize(IReadOnlyList<string> texts) => TokenIds<TModel>.FromTensor(Untyped.Tokenize(texts).ToTensor());

    /// <summary>Normalised image embeddings of pixels.</summary>
    public ImageEmbeddings<TModel> EmbedImages(Pixels<TModel> pixels) => new(Untyped.EmbedImages(pixels.Tensor));

    /// <summary>Normalised image embeddings of image files.</summary>
    public ImageEmbeddings<TModel> EmbedImages(IReadOnlyList<string> paths) => new(Untyped.EmbedImages(paths).ToTensor());

    /// <summary>Normalised text embeddings of token ids.</summary>
    public TextEmbeddings<TModel> EmbedTexts(TokenIds<TModel> ids) => new(Untyped.EmbedTokens(ids.Tensor));

    /// <summary>Normalised text embeddings of texts.</summary>
    public TextEmbeddings<TModel> EmbedTexts(IReadOnlyList<string> texts) => new(Untyped.EmbedTexts(texts).ToTensor());

    /// <summary>A typed zero-shot classifier.</summary>
    public ZeroShotClassifier<TModel> CreateClassifier(IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null) =>
        new(this, labels, templates);

    public void Dispose() => Untyped.Dispose();
}

/// <summary>A <see cref="ZeroShotClassifier"/> for a generated model: it takes that model's pixels and embeddings only.</summary>
public sealed class ZeroShotClassifier<TModel> : IDisposable where TModel : ClipModule, IClipModel<TModel>
{
    public ZeroShotClassifier(ClipPipeline<TModel> pipeline, IReadOnlyList<string> labels, IReadOnlyList<string>? templates = null)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        Untyped = new ZeroShotClassifier(pipeline.Untyped, labels, templates);
    }

    /// <summary>The untyped classifier.</summary>
    public ZeroShotClassifier Untyped { get; }

    public IReadOnlyList<string> Labels => Untyped.Labels;

    /// <summary>The class embeddings (a copy of the cached embeddings).</summary>
    public TextEmbeddings<TModel> ClassEmbeddings() => new(Untyped.ClassEmbeddings.ToTensor());

    /// <summary>Logits [N, classes] of <typeparamref name="TModel"/>'s pixels.</summary>
    public Tensor Logits(Pixels<TModel> pixels) => Untyped.Logits(pixels.Tensor);

    /// <summary>Classifies <typeparamref name="TModel"/>'s pixels.</summary>
    public IReadOnlyList<ZeroShotResult> Classify(Pixels<TModel> pixels) => Untyped.Classify(pixels.Tensor);

    /// <summary>Classifies normalised image embeddings of <typeparamref name="TModel"/>.</summary>
    public IReadOnlyList<ZeroShotResult> Classify(ImageEmbeddings<TModel> embeddings) => Untyped.ClassifyEmbeddings(embeddings.Tensor);

    /// <summary>Classifies image files.</summary>
    public IReadOnlyList<ZeroShotResult> Classify(IReadOnlyList<string> imagePaths) => Untyped.Classify(imagePaths);

    public void Dispose() => Untyped.Dispose();
}
