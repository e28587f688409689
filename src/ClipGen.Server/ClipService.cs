using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Text.Json;
using ClipGen.Applications;
using ClipGen.Indexing;
using Microsoft.AspNetCore.Http;
using SkiaSharp;

namespace ClipGen.Server;

/// <summary>
/// The model, the index and the request handlers. Inputs are checked and images decoded on the request's own thread; only
/// the forward passes go through the <see cref="InferenceBatcher"/>.
/// </summary>
sealed class ClipService : IAsyncDisposable
{
    readonly ServeOptions _options;
    readonly ClipPipeline _pipeline;
    readonly bool _ownsPipeline;
    readonly EmbeddingIndex? _index;
    readonly HnswVectorIndex? _graph;
    readonly string? _indexFolder;
    readonly Dictionary<string, ZeroShotClassifier> _classifiers = new(StringComparer.Ordinal); // touched on the model's thread only
    readonly ConcurrentDictionary<int, byte[]> _thumbnails = new();
    const int MaxClassifiers = 64;
    const int MaxThumbnails = 4096;

    public ClipService(ServeOptions options, ClipPipeline pipeline, bool ownsPipeline, EmbeddingIndex? index, HnswVectorIndex? graph, string? indexPath, ServerMetrics metrics)
    {
        _options = options;
        _pipeline = pipeline;
        _ownsPipeline = ownsPipeline;
        _index = index;
        _graph = graph;
        _indexFolder = indexPath is null ? null : Path.GetDirectoryName(Path.GetFullPath(indexPath));
        Metrics = metrics;
        _pipeline.BatchSize = options.MaxBatch;
        Batcher = new InferenceBatcher(pipeline, options.MaxBatch, options.MaxWaitMs, options.QueueCapacity, metrics);
        metrics.SetQueueDepth(() => Batcher.QueueDepth);
    }

    public InferenceBatcher Batcher { get; }
    public ServerMetrics Metrics { get; }
    public string ModelId => _pipeline.Spec.Name;
    public int Dimensions => _pipeline.Dimensions;
    public EmbeddingIndex? Index => _index;

    string Rule => _pipeline.Spec.Loss == Specs.LossKind.SigLip ? "sigmoid" : "softmax";

    // ------------------------------------------------------------------ GET

    public Health Health() => new("ok", ModelId, Batcher.QueueDepth);

    public ModelList Models() => new("list",
    [
        new ModelInfo(ModelId, "model", 0, "clipgen", Dimensions, _pipeline.Spec.Text.ContextLength, _pipeline.Spec.Vision.ImageSize,
            Rule, _pipeline.Backend.Kind.ToString().ToLowerInvariant(), _index?.Count ?? 0),
    ]);

    // ------------------------------------------------------------------ POST /v1/embeddings

    public async Task<EmbeddingsResponse> EmbeddingsAsync(EmbeddingsRequest request, CancellationToken cancel)
    {
        CheckModel(request.Model);
        if (request.Dimensions is int dims && dims != Dimensions)
            throw ApiException.BadRequest($"{ModelId} makes {Dimensions}-dimensional embeddings, not {dims}", "dimensions");
        bool base64 = request.EncodingFormat switch
        {
            null or "float" => false,
            "base64" => true,
            _ => throw ApiException.BadRequest($"encoding_format is 'float' or 'base64', not '{Shorten(request.EncodingFormat)}'", "encoding_format"),
        };
        var inputs = Inputs(request.Input);
        var texts = new List<string>();
        var images = new List<float[]>();
        var where = new (bool Image, int At)[inputs.Count];
        int tokens = 0;
        for (int i = 0; i < inputs.Count; i++)
        {
            var s = inputs[i];
            if (DataUrl.IsDataUrl(s))
            {
                where[i] = (true, images.Count);
                images.Add(Preprocess(s, inputs.Count == 1 ? "input" : $"input {i}", inputs.Count == 1 ? "input" : $"input[{i}]"));
            }
            else
            {
                where[i] = (false, texts.Count);
                texts.Add(s);
                tokens += TokenCount(s);
            }
        }
        var result = await Batcher.EmbedAsync(texts, images, cancel).ConfigureAwait(false);
        var data = new EmbeddingItem[inputs.Count];
        for (int i = 0; i < inputs.Count; i++)
        {
            var row = where[i].Image ? result.Images[where[i].At] : result.Texts[where[i].At];
            data[i] = new EmbeddingItem("embedding", i, base64 ? Base64(row) : row);
        }
        return new EmbeddingsResponse("list", data, ModelId, new Usage(tokens, tokens));
    }

    List<string> Inputs(JsonElement input)
    {
        var list = new List<string>();
        switch (input.ValueKind)
        {
            case JsonValueKind.String:
                list.Add(input.GetString()!);
                break;
            case JsonValueKind.Array:
                int n = input.GetArrayLength();
                if (n == 0) throw ApiException.BadRequest("input is an empty array: give at least one string", "input");
                if (n > _options.MaxInputs)
                    throw ApiException.BadRequest($"input has {n} items, more than this server's limit of {_options.MaxInputs} per request", "input", "too_many_inputs");
                int i = 0;
                foreach (var e in input.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.String)
                        throw ApiException.BadRequest($"input[{i}] is {Kind(e)}, not a string (token arrays are not accepted: send the text)", $"input[{i}]");
                    list.Add(e.GetString()!);
                    i++;
                }
                break;
            case JsonValueKind.Undefined or JsonValueKind.Null:
                throw ApiException.BadRequest("input is missing: give a string or an array of strings", "input");
            default:
                throw ApiException.BadRequest($"input is {Kind(input)}, not a string or an array of strings", "input");
        }
        return list;
    }

    int TokenCount(string text)
    {
        int context = _pipeline.Spec.Text.ContextLength;
        try
        {
            return Math.Min(_pipeline.Tokenizer.Encode(text).Length, context);
        }
        catch (ClipGenException e)
        {
            throw ApiException.BadRequest(e.Message, "input");
        }
    }

    static string Base64(float[] row)
    {
        var bytes = new byte[row.Length * 4];
        for (int i = 0; i < row.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4), row[i]);
        return Convert.ToBase64String(bytes);
    }

    // ------------------------------------------------------------------ POST /v1/classify

    public async Task<ClassifyResponse> ClassifyAsync(ClassifyRequest request, CancellationToken cancel)
    {
        CheckModel(request.Model);
        var images = request.Images ?? throw ApiException.BadRequest("images is missing: give an array of image data URLs", "images");
        if (images.Count == 0) throw ApiException.BadRequest("images is empty: give at least one image data URL", "images");
        if (images.Count > _options.MaxInputs)
            throw ApiException.BadRequest($"images has {images.Count} items, more than this server's limit of {_options.MaxInputs} per request", "images", "too_many_inputs");
        var labels = request.Labels ?? throw ApiException.BadRequest("labels is missing: give an array of class labels", "labels");
        if (labels.Count > _options.MaxLabels)
            throw ApiException.BadRequest($"labels has {labels.Count} items, more than this server's limit of {_options.MaxLabels}", "labels", "too_many_inputs");
        try { ZeroShotClassifier.ValidateLabels(labels); }
        catch (ClipGenException e) { throw ApiException.BadRequest(e.Message, "labels"); }
        var templates = request.Templates;
        if (templates is not null)
        {
            if (templates.Count > _options.MaxTemplates)
                throw ApiException.BadRequest($"templates has {templates.Count} items, more than this server's limit of {_options.MaxTemplates}", "templates", "too_many_inputs");
            try { Templates.Validate(templates); }
            catch (ClipGenException e) { throw ApiException.BadRequest(e.Message, "templates"); }
        }
        var pixels = new List<float[]>(images.Count);
        for (int i = 0; i < images.Count; i++)
        {
            var s = images[i] ?? throw ApiException.BadRequest($"images[{i}] is null", $"images[{i}]");
            if (!DataUrl.IsDataUrl(s)) throw ApiException.BadRequest($"images[{i}] is not a data URL (data:image/png;base64,...)", $"images[{i}]", "invalid_image");
            pixels.Add(Preprocess(s, $"images[{i}]", $"images[{i}]"));
        }
        var embedded = await Batcher.EmbedAsync([], pixels, cancel).ConfigureAwait(false);
        var rows = new float[images.Count * Dimensions];
        for (int i = 0; i < images.Count; i++) embedded.Images[i].CopyTo(rows, i * Dimensions);
        var labelList = labels.ToArray();
        var templateList = templates?.ToArray();
        var results = await Batcher.RunAsync(p => Classifier(p, labelList, templateList).ClassifyEmbeddings(new ArrayTensor<float>(rows, images.Count, Dimensions)), cancel).ConfigureAwait(false);
        var data = results.Select((r, i) => new ClassifyItem(i,
            r.Labels.Select((l, j) => new LabelProbability(l, r.Probabilities[j])).ToList(), r.Top.Label)).ToList();
        return new ClassifyResponse("list", ModelId, Rule, labelList, data);
    }

    /// <summary>A classifier per label set and templates, kept so that repeated requests reuse the label embeddings (model thread only).</summary>
    ZeroShotClassifier Classifier(ClipPipeline pipeline, string[] labels, string[]? templates)
    {
        var key = JsonSerializer.Serialize(new object?[] { labels, templates });
        if (_classifiers.TryGetValue(key, out var c)) return c;
        if (_classifiers.Count >= MaxClassifiers)
        {
            foreach (var old in _classifiers.Values) old.Dispose();
            _classifiers.Clear();
        }
        c = pipeline.CreateClassifier(labels, templates);
        _classifiers[key] = c;
        return c;
    }

    // ------------------------------------------------------------------ POST /v1/search

    public async Task<SearchResponse> SearchAsync(SearchRequest request, CancellationToken cancel)
    {
        CheckModel(request.Model);
        var index = _index ?? throw new ApiException(404, "this server has no index to search: start it with --index", null, "no_index");
        int k = request.K ?? 10;
        if (k < 1 || k > _options.MaxK) throw ApiException.BadRequest($"k must be from 1 to {_options.MaxK}, not {k}", "k");
        if ((request.Query is null) == (request.Vector is null))
            throw ApiException.BadRequest("give exactly one of query (a text or an image data URL) and vector", request.Query is null ? "query" : "vector");
        float[] vector;
        string kind;
        if (request.Vector is { } v)
        {
            if (v.Length != Dimensions) throw ApiException.BadRequest($"vector has {v.Length} values but {ModelId} embeddings have {Dimensions}", "vector");
            foreach (var x in v)
                if (!float.IsFinite(x)) throw ApiException.BadRequest("vector holds a NaN or infinite value", "vector");
            float norm = TensorPrimitives.Norm(v);
            if (norm == 0) throw ApiException.BadRequest("vector is all zeros", "vector");
            vector = v.Select(x => x / norm).ToArray();
            kind = "vector";
        }
        else if (DataUrl.IsDataUrl(request.Query!))
        {
            var px = Preprocess(request.Query!, "query", "query");
            vector = (await Batcher.EmbedAsync([], [px], cancel).ConfigureAwait(false)).Images[0];
            kind = "image";
        }
        else
        {
            if (string.IsNullOrWhiteSpace(request.Query)) throw ApiException.BadRequest("query is empty", "query");
            TokenCount(request.Query!);
            vector = (await Batcher.EmbedAsync([request.Query!], [], cancel).ConfigureAwait(false)).Texts[0];
            kind = "text";
        }
        k = Math.Min(k, index.Count);
        IReadOnlyList<SearchHit> hits = k == 0 ? [] : _graph is not null ? index.ToHits(_graph.Search(vector, k)) : index.Search(vector, k);
        var items = hits.Select((h, i) => new SearchItem(i + 1, h.Row, h.File, h.Score, $"/images/{h.Row}",
            new Dictionary<string, string> { ["file_name"] = Path.GetFileName(h.File), ["index_model"] = index.Model })).ToList();
        return new SearchResponse("list", ModelId, kind, items);
    }

    // ------------------------------------------------------------------ GET /images/{id}

    /// <summary>A JPEG thumbnail of the indexed file of row <paramref name="id"/>; only rows of the index are served, never a path.</summary>
    public IResult Thumbnail(int id)
    {
        var index = _index ?? throw new ApiException(404, "this server has no index: start it with --index", null, "no_index");
        if (id < 0 || id >= index.Count) throw new ApiException(404, $"no image {id}: the index has rows 0 to {index.Count - 1}", "id", "not_found");
        if (!_thumbnails.TryGetValue(id, out var jpeg))
        {
            jpeg = MakeThumbnail(Locate(index.Files[id]), id);
            if (_thumbnails.Count < MaxThumbnails) _thumbnails[id] = jpeg;
        }
        return Results.Bytes(jpeg, "image/jpeg");
    }

    string Locate(string file)
    {
        if (Path.IsPathRooted(file) || File.Exists(file) || _indexFolder is null) return file;
        var beside = Path.Combine(_indexFolder, file);
        return File.Exists(beside) ? beside : file;
    }

    byte[] MakeThumbnail(string path, int id)
    {
        byte[] bytes;
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists) throw new ApiException(404, $"image {id}: its file is no longer there", "id", "not_found");
            if (info.Length > Limits.MaxImageFileBytes) throw new ApiException(404, $"image {id}: its file is too large to show", "id", "not_found");
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ApiException(404, $"image {id}: its file cannot be read", "id", "not_found");
        }
        using var bitmap = SKBitmap.Decode(bytes) ?? throw new ApiException(404, $"image {id}: its file is not an image SkiaSharp decodes", "id", "not_found");
        int size = _options.ThumbnailSize;
        double scale = Math.Min(1.0, (double)size / Math.Max(bitmap.Width, bitmap.Height));
        int w = Math.Max(1, (int)Math.Round(bitmap.Width * scale)), h = Math.Max(1, (int)Math.Round(bitmap.Height * scale));
        using var resized = scale < 1 ? bitmap.Resize(new SKImageInfo(w, h), new SKSamplingOptions(SKCubicResampler.Mitchell)) : null;
        using var image = SKImage.FromBitmap(resized ?? bitmap);
        using var data = image.Encode(SKEncodedImageFormat.Jpeg, 85);
        return data.ToArray();
    }

    // ------------------------------------------------------------------ shared

    void CheckModel(string? model)
    {
        if (model is not null && !string.Equals(model, ModelId, StringComparison.OrdinalIgnoreCase))
            throw ApiException.BadRequest($"unknown model '{Shorten(model)}': this server runs '{ModelId}' (GET /v1/models)", "model", "model_not_found");
    }

    float[] Preprocess(string dataUrl, string what, string param)
    {
        var bytes = DataUrl.DecodeImage(dataUrl, what, param, _pipeline.Preprocessor.Options.MaxFileBytes);
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            return _pipeline.Preprocessor.Preprocess(stream, what);
        }
        catch (Exception e) when (e is ClipGenException or InvalidDataException or ArgumentException or NotSupportedException)
        {
            throw ApiException.BadRequest($"{what} could not be decoded as an image: {e.Message}", param, "invalid_image");
        }
    }

    static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => "a number",
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString().ToLowerInvariant(),
    };

    static string Shorten(string s) => s.Length <= 60 ? s : s[..57] + "...";

    int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await Batcher.DisposeAsync().ConfigureAwait(false);
        foreach (var c in _classifiers.Values) c.Dispose();
        _classifiers.Clear();
        _graph?.Dispose();
        if (_ownsPipeline) _pipeline.Dispose();
    }
}
