using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Linq.Expressions;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using Microsoft.Extensions.VectorData.ProviderServices;

// ProviderServices (the model builder, property models, VectorDataStrings) is MEVD's API for connector authors; it is
// marked experimental (MEVD9001), and every connector, Microsoft's own included, is built on it.
#pragma warning disable MEVD9001

namespace ClipGen.Indexing;

/// <summary>Options of a <see cref="ClipGenVectorStore"/>.</summary>
public sealed class ClipGenVectorStoreOptions
{
    /// <summary>Turns search inputs and non-vector properties (text, images) into vectors, e.g. a ClipGen embedding generator.</summary>
    public IEmbeddingGenerator? EmbeddingGenerator { get; init; }

    /// <summary>Settings of collections whose vector property asks for <see cref="IndexKind.Hnsw"/>.</summary>
    public HnswOptions Hnsw { get; init; } = new();
}

/// <summary>
/// A Microsoft.Extensions.VectorData vector store over ClipGen's indexes, in memory, so that Semantic Kernel and other
/// MEVD consumers search CLIP embeddings through the abstract <see cref="VectorStore"/> and
/// <see cref="VectorStoreCollection{TKey, TRecord}"/>. A vector property's <see cref="VectorStoreVectorAttribute.IndexKind"/>
/// picks the index: <see cref="IndexKind.Flat"/> (the default; exact, <see cref="ExactVectorIndex"/>),
/// <see cref="IndexKind.QuantizedFlat"/> (exact over int8 rows) or <see cref="IndexKind.Hnsw"/> (USearch,
/// <see cref="HnswVectorIndex"/>). Distances: <see cref="DistanceFunction.CosineSimilarity"/> (the default) and
/// <see cref="DistanceFunction.CosineDistance"/>. Not supported: other distance and index kinds, more than one
/// vector property, hybrid (keyword) search, and persistence (collections live as long as the store).
/// </summary>
public sealed class ClipGenVectorStore : VectorStore
{
    internal const string SystemName = "clipgen";
    readonly ConcurrentDictionary<string, CollectionData> _collections = new(StringComparer.Ordinal);
    readonly VectorStoreMetadata _metadata = new() { VectorStoreSystemName = SystemName };

    public ClipGenVectorStore(ClipGenVectorStoreOptions? options = null) => Options = options ?? new();

    public ClipGenVectorStoreOptions Options { get; }

    internal ConcurrentDictionary<string, CollectionData> Collections => _collections;

    [RequiresUnreferencedCode("The ClipGen vector store reflects over record types.")]
    [RequiresDynamicCode("The ClipGen vector store reflects over record types.")]
    public override VectorStoreCollection<TKey, TRecord> GetCollection<TKey, TRecord>(string name, VectorStoreCollectionDefinition? definition = null)
    {
        if (typeof(TRecord) == typeof(Dictionary<string, object?>)) throw new ArgumentException(VectorDataStrings.GetCollectionWithDictionaryNotSupported);
        var model = new ClipGenModelBuilder().Build(typeof(TRecord), typeof(TKey), definition, Options.EmbeddingGenerator);
        return new ClipGenCollection<TKey, TRecord>(this, name, model);
    }

    [RequiresUnreferencedCode("The ClipGen vector store reflects over record types.")]
    [RequiresDynamicCode("The ClipGen vector store reflects over record types.")]
    public override VectorStoreCollection<object, Dictionary<string, object?>> GetDynamicCollection(string name, VectorStoreCollectionDefinition definition)
    {
        ArgumentNullException.ThrowIfNull(definition);
        var model = new ClipGenModelBuilder().BuildDynamic(definition, Options.EmbeddingGenerator);
        return new ClipGenCollection<object, Dictionary<string, object?>>(this, name, model);
    }

    public override IAsyncEnumerable<string> ListCollectionNamesAsync(CancellationToken cancellationToken = default) =>
        _collections.Keys.Order(StringComparer.Ordinal).ToAsyncEnumerable();

    public override Task<bool> CollectionExistsAsync(string name, CancellationToken cancellationToken = default) =>
        Task.FromResult(_collections.ContainsKey(name));

    public override Task EnsureCollectionDeletedAsync(string name, CancellationToken cancellationToken = default)
    {
        if (_collections.TryRemove(name, out var data)) data.Dispose();
        return Task.CompletedTask;
    }

    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is not null ? null
            : serviceType == typeof(VectorStoreMetadata) ? _metadata
            : serviceType.IsInstanceOfType(this) ? this
            : null;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            foreach (var name in _collections.Keys.ToList())
                if (_collections.TryRemove(name, out var data)) data.Dispose();
        base.Dispose(disposing);
    }
}

/// <summary>One collection's rows: records by key, their index rows, and the index.</summary>
sealed class CollectionData(Type recordType, ExactVectorIndex exact, HnswVectorIndex? hnsw) : IDisposable
{
    public readonly Lock Gate = new();
    public Type RecordType { get; } = recordType;
    public ExactVectorIndex Exact { get; } = exact;
    public HnswVectorIndex? Hnsw { get; } = hnsw;
    /// <summary>Key → (record, its row in the index, or −1 without a vector).</summary>
    public Dictionary<object, (object Record, int Row)> ByKey { get; } = [];
    /// <summary>Row → record.</summary>
    public Dictionary<int, object> ByRow { get; } = [];
    int _graphAdds, _graphCapacity;

    /// <summary>Adds a row to the HNSW graph, growing it by doubling (removed nodes keep their slots in USearch).</summary>
    public void AddToGraph(int row, ReadOnlySpan<float> vector)
    {
        if (Hnsw is null) return;
        if (++_graphAdds > _graphCapacity) Hnsw.Reserve(_graphCapacity = Math.Max(64, _graphCapacity * 2));
        Hnsw.Add(row, vector);
    }

    public void Dispose() => Hnsw?.Dispose();
}

/// <summary>Validation of record types for <see cref="ClipGenVectorStore"/>.</summary>
sealed class ClipGenModelBuilder() : CollectionModelBuilder(new CollectionModelBuildingOptions { RequiresAtLeastOneVector = true, SupportsMultipleVectors = false })
{
    internal const string SupportedVectorTypes = "ReadOnlyMemory<float>, ReadOnlyMemory<float>?, Embedding<float>, float[]";

    internal static bool IsNativeVector(Type type) =>
        type == typeof(ReadOnlyMemory<float>) || type == typeof(ReadOnlyMemory<float>?) || type == typeof(Embedding<float>) || type == typeof(float[]);

    protected override bool IsDataPropertyTypeValid(Type type, [NotNullWhen(false)] out string? supportedTypes)
    {
        supportedTypes = "";
        return true; // records are kept as objects: any .NET type
    }

    protected override bool IsVectorPropertyTypeValid(Type type, [NotNullWhen(false)] out string? supportedTypes)
    {
        supportedTypes = SupportedVectorTypes;
        return IsNativeVector(type);
    }

    protected override void ValidateKeyProperty(KeyPropertyModel keyProperty)
    {
        base.ValidateKeyProperty(keyProperty);
        if (keyProperty.IsAutoGenerated && keyProperty.Type != typeof(Guid))
            throw new NotSupportedException($"key property '{keyProperty.ModelName}' is {keyProperty.Type.Name}; only Guid keys can be generated");
    }

    protected override void ValidateProperty(PropertyModel propertyModel, VectorStoreCollectionDefinition? definition)
    {
        base.ValidateProperty(propertyModel, definition);
        if (propertyModel is not VectorPropertyModel v) return;
        if (v.DistanceFunction is not (null or DistanceFunction.CosineSimilarity or DistanceFunction.CosineDistance))
            throw new NotSupportedException($"distance function '{v.DistanceFunction}' of '{v.ModelName}' is not supported by the ClipGen vector store (use CosineSimilarity or CosineDistance)");
        if (v.IndexKind is not (null or IndexKind.Flat or IndexKind.QuantizedFlat or IndexKind.Hnsw))
            throw new NotSupportedException($"index kind '{v.IndexKind}' of '{v.ModelName}' is not supported by the ClipGen vector store (use Flat, QuantizedFlat or Hnsw)");
        if (v.Dimensions <= 0) throw new NotSupportedException($"vector property '{v.ModelName}' needs its dimensions");
    }
}

/// <summary>A collection of a <see cref="ClipGenVectorStore"/> (see there for what is supported).</summary>
public sealed class ClipGenCollection<TKey, TRecord> : VectorStoreCollection<TKey, TRecord>
    where TKey : notnull
    where TRecord : class
{
    readonly ClipGenVectorStore _store;
    readonly CollectionModel _model;
    readonly VectorPropertyModel _vector;
    readonly VectorStoreCollectionMetadata _metadata;

    internal ClipGenCollection(ClipGenVectorStore store, string name, CollectionModel model)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        _store = store; Name = name; _model = model;
        _vector = model.VectorProperty;
        _metadata = new VectorStoreCollectionMetadata { VectorStoreSystemName = ClipGenVectorStore.SystemName, CollectionName = name };
    }

    public override string Name { get; }

    bool Distance => _vector.DistanceFunction == DistanceFunction.CosineDistance;

    CollectionData Data => _store.Collections.TryGetValue(Name, out var data)
        ? data
        : throw new VectorStoreException($"collection '{Name}' does not exist") { VectorStoreSystemName = ClipGenVectorStore.SystemName, CollectionName = Name };

    public override Task<bool> CollectionExistsAsync(CancellationToken cancellationToken = default) => Task.FromResult(_store.Collections.ContainsKey(Name));

    public override Task EnsureCollectionExistsAsync(CancellationToken cancellationToken = default)
    {
        var data = _store.Collections.GetOrAdd(Name, _ =>
        {
            var storage = _vector.IndexKind == IndexKind.QuantizedFlat ? VectorStorage.Int8 : VectorStorage.Float32;
            var hnsw = _vector.IndexKind == IndexKind.Hnsw ? HnswVectorIndex.Create(_vector.Dimensions, _store.Options.Hnsw) : null;
            return new CollectionData(typeof(TRecord), new ExactVectorIndex(_vector.Dimensions, storage), hnsw);
        });
        if (data.RecordType != typeof(TRecord))
            throw new InvalidOperationException($"collection '{Name}' holds {data.RecordType.Name} records, not {typeof(TRecord).Name}");
        return Task.CompletedTask;
    }

    public override Task EnsureCollectionDeletedAsync(CancellationToken cancellationToken = default) => _store.EnsureCollectionDeletedAsync(Name, cancellationToken);

    public override Task<TRecord?> GetAsync(TKey key, RecordRetrievalOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        CheckIncludeVectors(options?.IncludeVectors == true);
        var data = Data;
        lock (data.Gate) return Task.FromResult(data.ByKey.TryGetValue(key, out var entry) ? (TRecord?)entry.Record : null);
    }

    public override IAsyncEnumerable<TRecord> GetAsync(Expression<Func<TRecord, bool>> filter, int top, FilteredRecordRetrievalOptions<TRecord>? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        options ??= new();
        CheckIncludeVectors(options.IncludeVectors);
        var data = Data;
        var predicate = filter.Compile();
        List<TRecord> records;
        lock (data.Gate) records = data.ByKey.Values.Select(e => (TRecord)e.Record).Where(predicate).ToList();
        IEnumerable<TRecord> ordered = records;
        var orderBy = options.OrderBy?.Invoke(new()).Values;
        if (orderBy is { Count: > 0 })
        {
            IOrderedEnumerable<TRecord>? sorted = null;
            foreach (var o in orderBy)
            {
                var key = o.PropertySelector.Compile();
                sorted = sorted is null
                    ? (o.Ascending ? records.OrderBy(key) : records.OrderByDescending(key))
                    : (o.Ascending ? sorted.ThenBy(key) : sorted.ThenByDescending(key));
            }
            ordered = sorted!;
        }
        return ordered.Skip(options.Skip).Take(top).ToAsyncEnumerable();
    }

    public override Task DeleteAsync(TKey key, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var data = Data;
        lock (data.Gate)
        {
            if (!data.ByKey.Remove(key, out var entry) || entry.Row < 0) return Task.CompletedTask;
            data.ByRow.Remove(entry.Row);
            data.Exact.Remove(entry.Row);
            data.Hnsw?.Remove(entry.Row);
        }
        return Task.CompletedTask;
    }

    public override Task UpsertAsync(TRecord record, CancellationToken cancellationToken = default) => UpsertAsync([record], cancellationToken);

    public override async Task UpsertAsync(IEnumerable<TRecord> records, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(records);
        var list = records.ToList();
        if (list.Count == 0) return;
        var data = Data;
        IReadOnlyList<Embedding>? generated = null;
        if (!ClipGenModelBuilder.IsNativeVector(_vector.Type))
        {
            if (_vector.EmbeddingGenerator is null) throw new InvalidOperationException(VectorDataStrings.UnsupportedVectorPropertyWithoutEmbeddingGenerator(_vector));
            generated = await _vector.GenerateEmbeddingsAsync(list.Select(r => _vector.GetValueAsObject(r)), cancellationToken).ConfigureAwait(false);
        }
        var key = _model.KeyProperty;
        lock (data.Gate)
        {
            for (int i = 0; i < list.Count; i++)
            {
                var record = list[i] ?? throw new ArgumentException($"record {i} is null", nameof(records));
                var k = key.GetValueAsObject(record);
                if (key.IsAutoGenerated && (k is null || (k is Guid g && g == Guid.Empty)))
                {
                    k = Guid.NewGuid();
                    key.SetValueAsObject(record, k);
                }
                if (k is null) throw new ArgumentException($"record {i} has no key ('{key.ModelName}' is null)", nameof(records));
                ReadOnlyMemory<float>? vector = generated is not null
                    ? ((Embedding<float>)generated[i]).Vector
                    : _vector.GetValueAsObject(record) switch
                    {
                        null => null,
                        ReadOnlyMemory<float> m => m,
                        float[] a => a,
                        Embedding<float> e => e.Vector,
                        var other => throw new InvalidOperationException($"vector property '{_vector.ModelName}' holds {other.GetType().Name}"),
                    };
                if (vector is { } v && v.Length != _vector.Dimensions)
                    throw new ArgumentException($"record '{k}': '{_vector.ModelName}' has {v.Length} dimensions, the collection {_vector.Dimensions}", nameof(records));
                int row = -1;
                if (data.ByKey.TryGetValue(k, out var old) && old.Row >= 0)
                {
                    data.ByRow.Remove(old.Row);
                    if (vector is null) { data.Exact.Remove(old.Row); data.Hnsw?.Remove(old.Row); }
                    else
                    {
                        row = old.Row;
                        data.Exact.Set(row, vector.Value.Span);
                        data.Hnsw?.Remove(row);
                        data.AddToGraph(row, vector.Value.Span);
                    }
                }
                else if (vector is { } nv)
                {
                    row = data.Exact.Add(nv.Span);
                    data.AddToGraph(row, nv.Span);
                }
                data.ByKey[k] = (record, row);
                if (row >= 0) data.ByRow[row] = record;
            }
        }
    }

    public override async IAsyncEnumerable<VectorSearchResult<TRecord>> SearchAsync<TInput>(TInput searchValue, int top, VectorSearchOptions<TRecord>? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(searchValue);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        options ??= new();
        CheckIncludeVectors(options.IncludeVectors);
        var vectorProperty = _model.GetVectorPropertyOrSingle(options);
        ReadOnlyMemory<float> query = searchValue switch
        {
            ReadOnlyMemory<float> r => r,
            float[] f => f,
            Embedding<float> e => e.Vector,
            _ when vectorProperty.EmbeddingGenerationDispatcher is not null
                => ((Embedding<float>)await vectorProperty.GenerateEmbeddingAsync(searchValue, cancellationToken).ConfigureAwait(false)).Vector,
            _ => vectorProperty.EmbeddingGenerator is null
                ? throw new NotSupportedException(VectorDataStrings.InvalidSearchInputAndNoEmbeddingGeneratorWasConfigured(searchValue.GetType(), ClipGenModelBuilder.SupportedVectorTypes))
                : throw new InvalidOperationException(VectorDataStrings.IncompatibleEmbeddingGeneratorWasConfiguredForInputType(typeof(TInput), vectorProperty.EmbeddingGenerator.GetType())),
        };
        if (query.Length != _vector.Dimensions) throw new ArgumentException($"the query has {query.Length} dimensions, the collection {_vector.Dimensions}", nameof(searchValue));
        var data = Data;
        int wanted = checked(top + Math.Max(0, options.Skip));
        List<(TRecord Record, double Score)> hits;
        lock (data.Gate)
        {
            ScoredRow[] rows;
            if (options.Filter is not null)
            {
                // A filter is applied to the records first, then those rows are searched exactly.
                var predicate = options.Filter.Compile();
                rows = data.Exact.Search(query.Span, wanted, row => data.ByRow.TryGetValue(row, out var r) && predicate((TRecord)r));
            }
            else rows = data.Hnsw is { } hnsw
                ? hnsw.Search(query.Span, wanted)
                : data.Exact.Search(query.Span, wanted);
            hits = rows.Where(r => data.ByRow.ContainsKey(r.Row))
                .Select(r => ((TRecord)data.ByRow[r.Row], Distance ? 1 - (double)r.Score : r.Score)).ToList();
        }
        foreach (var (record, score) in hits.Skip(options.Skip).Take(top))
        {
            if (options.ScoreThreshold is double t && (Distance ? score > t : score < t)) continue;
            yield return new VectorSearchResult<TRecord>(record, score);
        }
    }

    void CheckIncludeVectors(bool includeVectors)
    {
        if (includeVectors && _model.EmbeddingGenerationRequired) throw new NotSupportedException(VectorDataStrings.IncludeVectorsNotSupportedWithEmbeddingGeneration);
    }

    public override object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        return serviceKey is not null ? null
            : serviceType == typeof(VectorStoreCollectionMetadata) ? _metadata
            : serviceType.IsInstanceOfType(this) ? this
            : null;
    }
}
