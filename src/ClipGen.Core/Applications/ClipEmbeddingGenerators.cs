using Microsoft.Extensions.AI;

namespace ClipGen.Applications;

/// <summary>Shared plumbing of the two <c>Microsoft.Extensions.AI</c> adapters.</summary>
public abstract class ClipEmbeddingGeneratorBase : IDisposable
{
    readonly bool _ownsPipeline;
    bool _disposed;

    private protected ClipEmbeddingGeneratorBase(ClipPipeline pipeline, bool ownsPipeline)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        Pipeline = pipeline;
        _ownsPipeline = ownsPipeline;
        Metadata = new EmbeddingGeneratorMetadata("ClipGen", providerUri: null, defaultModelId: pipeline.Spec.Name, defaultModelDimensions: pipeline.Dimensions);
    }

    /// <summary>The pipeline the embeddings come from.</summary>
    public ClipPipeline Pipeline { get; }

    /// <summary>Provider <c>ClipGen</c>, the spec's name as model id, the joint embedding width as dimensions.</summary>
    public EmbeddingGeneratorMetadata Metadata { get; }

    /// <summary>The metadata, the pipeline, its backend, or this object, when asked for by type (no keyed services).</summary>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return Metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType.IsInstanceOfType(Pipeline)) return Pipeline;
        if (serviceType.IsInstanceOfType(Pipeline.Backend)) return Pipeline.Backend;
        return null;
    }

    private protected void Check(EmbeddingGenerationOptions? options)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (options?.Dimensions is int d && d != Pipeline.Dimensions)
            throw new NotSupportedException($"{Pipeline.Spec.Name} makes {Pipeline.Dimensions}-dimensional embeddings; {d} were asked for");
        if (options?.ModelId is { Length: > 0 } id && !string.Equals(id, Pipeline.Spec.Name, StringComparison.OrdinalIgnoreCase))
            throw new NotSupportedException($"this generator runs model '{Pipeline.Spec.Name}', not '{id}'");
    }

    private protected GeneratedEmbeddings<Embedding<float>> Wrap(ArrayTensor<float> normalized)
    {
        int n = normalized.Rows, d = (int)normalized.Dim(1);
        var data = normalized.Data;
        var created = DateTimeOffset.UtcNow;
        var result = new GeneratedEmbeddings<Embedding<float>>(n);
        for (int i = 0; i < n; i++)
            result.Add(new Embedding<float>(data.AsMemory(i * d, d)) { ModelId = Pipeline.Spec.Name, CreatedAt = created });
        return result;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (_ownsPipeline) Pipeline.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// CLIP text embeddings behind <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>: unit-length vectors in the joint
/// space, comparable (cosine or dot product) with <see cref="ClipImageEmbeddingGenerator"/>'s.
/// </summary>
public sealed class ClipTextEmbeddingGenerator(ClipPipeline pipeline, bool ownsPipeline = false)
    : ClipEmbeddingGeneratorBase(pipeline, ownsPipeline), IEmbeddingGenerator<string, Embedding<float>>
{
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        Check(options);
        var texts = values.ToList();
        return Task.Run(() =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            return Wrap(Pipeline.EmbedTexts(texts));
        }, cancellationToken);
    }
}

/// <summary>
/// CLIP image embeddings behind <see cref="IEmbeddingGenerator{TInput, TEmbedding}"/>. Inputs are encoded images
/// (PNG, JPEG, WebP, BMP, GIF) as <see cref="DataContent"/>, e.g. <c>await DataContent.LoadFromAsync(path)</c> or
/// <c>new DataContent(bytes, "image/png")</c>. An undecodable image is a <see cref="ClipGenException"/>.
/// </summary>
public sealed class ClipImageEmbeddingGenerator(ClipPipeline pipeline, bool ownsPipeline = false)
    : ClipEmbeddingGeneratorBase(pipeline, ownsPipeline), IEmbeddingGenerator<DataContent, Embedding<float>>
{
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<DataContent> values, EmbeddingGenerationOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        Check(options);
        var images = values.ToList();
        for (int i = 0; i < images.Count; i++)
        {
            if (images[i] is null) throw new ArgumentException($"image {i} is null", nameof(values));
            if (!images[i].HasTopLevelMediaType("image") && images[i].MediaType != "application/octet-stream")
                throw new ClipGenException($"{images[i].Name ?? $"input {i}"}: media type '{images[i].MediaType}' is not an image");
        }
        return Task.Run(() =>
        {
            var pre = Pipeline.Preprocessor;
            int per = pre.ValuesPerImage;
            var data = new float[(long)images.Count * per];
            try
            {
                Parallel.For(0, images.Count, new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
                {
                    using var stream = new MemoryStream(images[i].Data.ToArray(), writable: false);
                    pre.Preprocess(stream, images[i].Name ?? $"image {i}").CopyTo(data.AsSpan(i * per, per));
                });
            }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0 && e.InnerExceptions[0] is ClipGenException first)
            {
                throw first;
            }
            long s = pre.ImageSize;
            return Wrap(Pipeline.EmbedImages(new ArrayTensor<float>(data, images.Count, 3, s, s)));
        }, cancellationToken);
    }
}
