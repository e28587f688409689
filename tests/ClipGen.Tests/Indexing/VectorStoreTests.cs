using System.Numerics.Tensors;
using ClipGen.Applications;
using ClipGen.Indexing;
using ClipGen.Modeling;
using ClipGen.Tests.Applications;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.VectorData;
using Xunit;

namespace ClipGen.Tests.Indexing;

/// <summary>The MEVD store, used only through the abstract <see cref="VectorStore"/> and <see cref="VectorStoreCollection{TKey, TRecord}"/>.</summary>
public class VectorStoreTests
{
    public sealed class Photo
    {
        [VectorStoreKey] public int Id { get; set; }
        [VectorStoreData(IsIndexed = true)] public string Label { get; set; } = "";
        [VectorStoreData] public int Year { get; set; }
        [VectorStoreVector(16)] public ReadOnlyMemory<float> Embedding { get; set; }
    }

    public sealed class HnswPhoto
    {
        [VectorStoreKey] public Guid Id { get; set; }
        [VectorStoreData] public int Number { get; set; }
        [VectorStoreVector(16, IndexKind = IndexKind.Hnsw, DistanceFunction = DistanceFunction.CosineDistance)] public float[]? Embedding { get; set; }
    }

    public sealed class Caption
    {
        [VectorStoreKey] public string Id { get; set; } = "";
        [VectorStoreData] public string Text { get; set; } = "";
        // Embedded by the store's generator (ClipGen's CLIP text embeddings) from the text itself.
        [VectorStoreVector(32)] public string Embedding => Text;
    }

    public sealed class Euclid
    {
        [VectorStoreKey] public int Id { get; set; }
        [VectorStoreVector(4, DistanceFunction = DistanceFunction.EuclideanDistance)] public float[]? V { get; set; }
    }

    static float[] Row(float[] rows, int i) => rows.AsSpan(i * 16, 16).ToArray();

    [Fact]
    public async Task Upsert_get_delete_and_search_with_top_k_and_a_filter()
    {
        var rows = IndexTests.Rows(300, 16, seed: 21);
        VectorStore store = new ClipGenVectorStore();
        VectorStoreCollection<int, Photo> photos = store.GetCollection<int, Photo>("photos");
        Assert.False(await photos.CollectionExistsAsync());
        await Assert.ThrowsAsync<VectorStoreException>(() => photos.GetAsync(1));
        await photos.EnsureCollectionExistsAsync();
        Assert.Equal(["photos"], await store.ListCollectionNamesAsync().ToListAsync());
        await photos.UpsertAsync(Enumerable.Range(0, 300).Select(i => new Photo { Id = i, Label = $"p{i}", Year = 1950 + i % 70, Embedding = Row(rows, i) }));

        var p7 = await photos.GetAsync(7);
        Assert.Equal(("p7", 1957), (p7!.Label, p7.Year));
        Assert.Null(await photos.GetAsync(1000));
        Assert.Equal([3, 5], await photos.GetAsync([3, 5, 999]).Select(p => p.Id).ToListAsync());

        // Top-k equals a brute-force cosine ranking.
        var query = IndexTests.Rows(1, 16, seed: 22);
        var expected = Enumerable.Range(0, 300).OrderByDescending(i => TensorPrimitives.CosineSimilarity(Row(rows, i), query)).Take(5).ToArray();
        var results = await photos.SearchAsync(new ReadOnlyMemory<float>(query), 5).ToListAsync();
        Assert.Equal(expected, results.Select(r => r.Record.Id));
        Assert.Equal(TensorPrimitives.CosineSimilarity(Row(rows, expected[0]), query), results[0].Score!.Value, 5);

        // A filter, skip, and a score threshold.
        var filtered = await photos.SearchAsync(query, 5, new VectorSearchOptions<Photo> { Filter = p => p.Year >= 2000 && p.Label != "p60" }).ToListAsync();
        var expectedFiltered = Enumerable.Range(0, 300).Where(i => 1950 + i % 70 >= 2000 && i != 60)
            .OrderByDescending(i => TensorPrimitives.CosineSimilarity(Row(rows, i), query)).Take(5);
        Assert.Equal(expectedFiltered, filtered.Select(r => r.Record.Id));
        var skipped = await photos.SearchAsync(query, 3, new VectorSearchOptions<Photo> { Skip = 2 }).ToListAsync();
        Assert.Equal(expected[2..5], skipped.Select(r => r.Record.Id));
        var threshold = results[2].Score!.Value;
        Assert.Equal(expected[..3], await photos.SearchAsync(query, 5, new VectorSearchOptions<Photo> { ScoreThreshold = threshold - 1e-9 }).Select(r => r.Record.Id).ToListAsync());

        // Update (a new vector) and delete.
        await photos.UpsertAsync(new Photo { Id = expected[4], Label = "moved", Year = 1, Embedding = query });
        var best = await photos.SearchAsync(query, 1).SingleAsync();
        Assert.Equal(("moved", 1.0), (best.Record.Label, Math.Round(best.Score!.Value, 5)));
        await photos.DeleteAsync(expected[4]);
        await photos.DeleteAsync([expected[0], 12345]);
        Assert.Null(await photos.GetAsync(expected[4]));
        Assert.Equal(expected[1..4], await photos.SearchAsync(query, 3).Select(r => r.Record.Id).ToListAsync());

        // Retrieval by filter, ordered.
        var old = await photos.GetAsync(p => p.Year < 1953, 10, new FilteredRecordRetrievalOptions<Photo> { OrderBy = o => o.Descending(p => p.Id) }).Select(p => p.Id).ToListAsync();
        Assert.Equal(Enumerable.Range(0, 300).Where(i => 1950 + i % 70 < 1953 && i != expected[0] && i != expected[4]).OrderDescending().Take(10), old);

        await store.EnsureCollectionDeletedAsync("photos");
        Assert.False(await photos.CollectionExistsAsync());
    }

    [Fact]
    public async Task An_hnsw_collection_with_cosine_distance_and_generated_keys()
    {
        var rows = IndexTests.Rows(2000, 16, seed: 23, rank: 6);
        VectorStore store = new ClipGenVectorStore(new ClipGenVectorStoreOptions { Hnsw = new HnswOptions { ExpansionSearch = 200 } });
        VectorStoreCollection<Guid, HnswPhoto> c = store.GetCollection<Guid, HnswPhoto>("h");
        await c.EnsureCollectionExistsAsync();
        var records = Enumerable.Range(0, 2000).Select(i => new HnswPhoto { Number = i, Embedding = Row(rows, i) }).ToList();
        await c.UpsertAsync(records);
        Assert.All(records, r => Assert.NotEqual(Guid.Empty, r.Id)); // keys were generated
        double recall = 0;
        for (int q = 0; q < 50; q++)
        {
            var query = Row(rows, q * 37);
            var truth = Enumerable.Range(0, 2000).OrderByDescending(i => TensorPrimitives.Dot(Row(rows, i), query)).Take(10).ToHashSet();
            var found = await c.SearchAsync(query, 10).ToListAsync();
            Assert.Equal(0, found[0].Score!.Value, 4); // cosine distance of the row to itself
            Assert.Equal(found.Select(f => f.Score), found.Select(f => f.Score).Order()); // ascending distance
            recall += found.Count(f => truth.Contains(f.Record.Number)) / 10.0;
        }
        Assert.True(recall / 50 >= 0.95, $"recall@10 {recall / 50}");
        // A filter searches the matching records exactly.
        var even = await c.SearchAsync(Row(rows, 1), 5, new VectorSearchOptions<HnswPhoto> { Filter = r => r.Number % 2 == 0 }).ToListAsync();
        Assert.All(even, r => Assert.Equal(0, r.Record.Number % 2));
        await c.DeleteAsync(records[0].Id);
        Assert.DoesNotContain(await c.SearchAsync(Row(rows, 0), 5).ToListAsync(), r => r.Record.Number == 0);
    }

    [Fact]
    public async Task ClipGens_embedding_generator_plugs_into_the_store()
    {
        using var pipeline = AppFixtures.Pipeline("openai/tiny-vit");
        using var generator = new ClipTextEmbeddingGenerator(pipeline);
        VectorStore store = new ClipGenVectorStore(new ClipGenVectorStoreOptions { EmbeddingGenerator = generator });
        var c = store.GetCollection<string, Caption>("captions");
        await c.EnsureCollectionExistsAsync();
        var texts = AppFixtures.Captions("openai/tiny-vit");
        await c.UpsertAsync(texts.Select((t, i) => new Caption { Id = $"c{i}", Text = t }));
        // Search by text: the store embeds the query with the same generator; the ranking is the cosine of CLIP text embeddings.
        using var all = pipeline.EmbedTexts(texts).ToTensor();
        using var q = pipeline.EmbedTexts(["a diagram"]).ToTensor();
        var sims = all.matmul(q.t()).data<float>().ToArray();
        var expected = Enumerable.Range(0, texts.Length).OrderByDescending(i => sims[i]).Select(i => $"c{i}").ToArray();
        var found = await c.SearchAsync("a diagram", texts.Length).ToListAsync();
        Assert.Equal(expected, found.Select(f => f.Record.Id));
        Assert.Equal(sims.Max(), found[0].Score!.Value, 4);
        await Assert.ThrowsAsync<NotSupportedException>(async () => await c.GetAsync("c0", new RecordRetrievalOptions { IncludeVectors = true }));
    }

    [Fact]
    public async Task Dynamic_collections_and_unsupported_settings()
    {
        VectorStore store = new ClipGenVectorStore();
        var definition = new VectorStoreCollectionDefinition
        {
            Properties = [new VectorStoreKeyProperty("Key", typeof(string)), new VectorStoreDataProperty("Name", typeof(string)), new VectorStoreVectorProperty("V", typeof(float[]), 3)],
        };
        var dyn = store.GetDynamicCollection("dyn", definition);
        await dyn.EnsureCollectionExistsAsync();
        await dyn.UpsertAsync([new Dictionary<string, object?> { ["Key"] = "a", ["Name"] = "x", ["V"] = new float[] { 1, 0, 0 } },
                               new Dictionary<string, object?> { ["Key"] = "b", ["Name"] = "y", ["V"] = new float[] { 0, 1, 0 } }]);
        var hit = await dyn.SearchAsync(new float[] { 0.1f, 1, 0 }, 1).SingleAsync();
        Assert.Equal("y", hit.Record["Name"]);
        Assert.Equal("x", (await dyn.GetAsync("a"))!["Name"]);

        Assert.Throws<NotSupportedException>(() => store.GetCollection<int, Euclid>("e"));
        var photos = store.GetCollection<int, Photo>("p");
        await photos.EnsureCollectionExistsAsync();
        await Assert.ThrowsAsync<ArgumentException>(() => photos.UpsertAsync(new Photo { Id = 1, Embedding = new float[3] }));
        await Assert.ThrowsAsync<NotSupportedException>(async () => await photos.SearchAsync("text without a generator", 1).ToListAsync());
        Assert.Equal("clipgen", ((VectorStoreMetadata)store.GetService(typeof(VectorStoreMetadata))!).VectorStoreSystemName);
    }
}
