using System.Numerics.Tensors;
using ClipGen.Applications;
using ClipGen.Indexing;
using Xunit;
using Xunit.Abstractions;

namespace ClipGen.Tests.Indexing;

public class IndexTests(ITestOutputHelper output)
{
    /// <summary>Seeded unit rows: isotropic, or with a low intrinsic dimension (<paramref name="rank"/>) like real embeddings.</summary>
    internal static float[] Rows(int n, int dims, int seed, int rank = 0)
    {
        var rng = new Random(seed);
        var basisRng = new Random(12345); // queries and rows share the subspace
        var basis = new float[dims * Math.Max(rank, 1)];
        for (int i = 0; i < basis.Length; i++) basis[i] = (float)Gaussian(basisRng);
        var rows = new float[n * dims];
        var z = new float[Math.Max(rank, 1)];
        for (int i = 0; i < n; i++)
        {
            var row = rows.AsSpan(i * dims, dims);
            if (rank > 0)
            {
                for (int j = 0; j < rank; j++) z[j] = (float)Gaussian(rng);
                for (int j = 0; j < dims; j++) row[j] = TensorPrimitives.Dot(basis.AsSpan(j * rank, rank), z) + 0.05f * (float)Gaussian(rng);
            }
            else for (int j = 0; j < dims; j++) row[j] = (float)Gaussian(rng);
            TensorPrimitives.Multiply(row, 1 / TensorPrimitives.Norm(row), row);
        }
        return rows;
    }

    static double Gaussian(Random rng) => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>The oracle: every row's cosine in double precision, fully sorted (score descending, row ascending).</summary>
    static (int Row, double Score)[] BruteForce(float[] rows, int dims, ReadOnlySpan<float> query, int k)
    {
        double qn = 0;
        foreach (var q in query) qn += (double)q * q;
        qn = Math.Sqrt(qn);
        var all = new (int Row, double Score)[rows.Length / dims];
        for (int r = 0; r < all.Length; r++)
        {
            double dot = 0, rn = 0;
            for (int j = 0; j < dims; j++) { dot += (double)rows[r * dims + j] * query[j]; rn += (double)rows[r * dims + j] * rows[r * dims + j]; }
            all[r] = (r, dot / (Math.Sqrt(rn) * qn));
        }
        return all.OrderByDescending(x => x.Score).ThenBy(x => x.Row).Take(k).ToArray();
    }

    [Fact]
    public void Exact_search_equals_a_full_sort_in_double_precision()
    {
        const int d = 48;
        var rows = Rows(3000, d, seed: 1);
        // Rows that are not unit length, and duplicates (ties), in a copy: the index normalises them.
        var raw = (float[])rows.Clone();
        for (int j = 0; j < d; j++) { raw[5 * d + j] *= 3; raw[7 * d + j] = raw[5 * d + j] * 0.5f; }
        var index = ExactVectorIndex.FromRows(raw, d);
        var queries = Rows(40, d, seed: 2);
        for (int q = 0; q < 40; q++)
        {
            var query = queries.AsSpan(q * d, d);
            if (q == 0) query = raw.AsSpan(5 * d, d); // a query equal to two tied rows
            var expected = BruteForce(raw, d, query, 25);
            var actual = index.Search(query, 25);
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.True(Math.Abs(expected[i].Score - actual[i].Score) < 1e-5, $"query {q}, rank {i}: {actual[i].Score} (row {actual[i].Row}) vs {expected[i].Score} (row {expected[i].Row})");
                // Rows whose scores differ by more than float rounding are in the same order.
                if (i + 1 < expected.Length && expected[i].Score - expected[i + 1].Score > 1e-5) Assert.Equal(expected[i].Row, actual[i].Row);
            }
            if (q == 0) { Assert.Equal([5, 7], actual.Take(2).Select(r => r.Row).Order()); Assert.Equal(1.0, actual[0].Score, 5); }
        }
        // k beyond the row count returns every row; the batch search is the single search.
        Assert.Equal(3000, index.Search(queries.AsSpan(0, d), 5000).Length);
        var batch = index.SearchBatch(queries, 10);
        for (int q = 0; q < 40; q++) Assert.Equal(index.Search(queries.AsSpan(q * d, d), 10), batch[q]);
    }

    [Fact]
    public void A_large_scan_split_across_cores_gives_the_single_thread_result()
    {
        const int d = 64;
        var rows = Rows(40_000, d, seed: 3); // 2.56M values: above the parallel threshold
        var index = ExactVectorIndex.FromRows(rows, d);
        var query = Rows(1, d, seed: 4);
        var expected = BruteForce(rows, d, query, 50);
        var actual = index.Search(query, 50);
        Assert.Equal(expected.Select(e => e.Row), actual.Select(a => a.Row));
    }

    [Fact]
    public void Int8_storage_errs_within_its_rounding_bound_in_a_quarter_of_the_memory()
    {
        const int d = 128;
        foreach (var rank in new[] { 0, 16 })
        {
            var rows = Rows(5000, d, seed: 5, rank: rank);
            var f32 = ExactVectorIndex.FromRows(rows, d);
            var i8 = ExactVectorIndex.FromRows(rows, d, VectorStorage.Int8);
            Assert.Equal(f32.MemoryBytes / 4 + 5000 * 4, i8.MemoryBytes);
            var queries = Rows(100, d, seed: 6, rank: rank);
            double recall = 0;
            for (int q = 0; q < 100; q++)
            {
                var query = queries.AsSpan(q * d, d);
                var exact = f32.Search(query, 10);
                var approx = i8.Search(query, 10);
                recall += approx.Count(a => exact.Any(e => e.Row == a.Row)) / 10.0;
                // Each value is rounded to within half a step (max|row| / 254), so a score is off by at most
                // Σ|q_i| · max|row| / 254; a returned row is never worse than the true k-th by more than twice the largest bound.
                double worst = 0;
                foreach (var a in approx)
                {
                    var row = rows.AsSpan(a.Row * d, d);
                    double truth = TensorPrimitives.Dot(row, query);
                    double bound = TensorPrimitives.SumOfMagnitudes(query) * Math.Abs(TensorPrimitives.MaxMagnitude(row)) / 254 + 1e-6;
                    Assert.True(Math.Abs(a.Score - truth) <= bound, $"row {a.Row}: int8 score {a.Score} vs {truth}, bound {bound}");
                    worst = Math.Max(worst, bound);
                }
                foreach (var e in exact)
                    worst = Math.Max(worst, TensorPrimitives.SumOfMagnitudes(query) * Math.Abs(TensorPrimitives.MaxMagnitude(rows.AsSpan(e.Row * d, d))) / 254 + 1e-6);
                foreach (var a in approx)
                {
                    double truth = TensorPrimitives.Dot(rows.AsSpan(a.Row * d, d), query);
                    Assert.True(truth >= exact[^1].Score - 2 * worst, $"query {q}: row {a.Row} scores {truth} (int8 {a.Score}), the exact 10th {exact[^1].Score}, bound {worst}");
                }
            }
            output.WriteLine($"int8 exact search, {(rank == 0 ? "isotropic" : $"rank-{rank}")} rows: recall@10 {recall / 100:F4}");
            if (rank == 0) Assert.True(recall / 100 >= 0.9, $"int8 recall@10 on isotropic rows {recall / 100}");
        }
    }

    [Fact]
    public void Rows_can_be_removed_replaced_and_filtered()
    {
        const int d = 16;
        var rows = Rows(200, d, seed: 7);
        var index = new ExactVectorIndex(d);
        for (int i = 0; i < 200; i++) Assert.Equal(i, index.Add(rows.AsSpan(i * d, d)));
        var query = rows.AsSpan(42 * d, d).ToArray();
        Assert.Equal(42, index.Search(query, 1)[0].Row);
        Assert.True(index.Remove(42));
        Assert.False(index.Remove(42));
        Assert.Equal(199, index.Count);
        Assert.DoesNotContain(index.Search(query, 200), r => r.Row == 42);
        Assert.Equal(42, index.Add(query)); // the slot is reused
        index.Set(43, query.Select(x => -x).ToArray());
        Assert.Equal(-1, index.Search(query, 200)[^1].Score, 5);
        var even = index.Search(query, 10, row => row % 2 == 0);
        Assert.All(even, r => Assert.Equal(0, r.Row % 2));
        Assert.Throws<ClipGenException>(() => index.Add(new float[d + 1]));
        Assert.Throws<ClipGenException>(() => index.Search(Enumerable.Repeat(float.NaN, d).ToArray(), 3));
    }

    [Fact]
    public void TopK_keeps_the_k_best_of_any_order_with_ties_to_the_lower_row()
    {
        var rng = new Random(9);
        for (int trial = 0; trial < 200; trial++)
        {
            int n = rng.Next(1, 300), k = rng.Next(1, 40);
            var scores = Enumerable.Range(0, n).Select(_ => (float)Math.Round(rng.NextDouble(), 1)).ToArray(); // many ties
            var top = new TopK(k);
            foreach (var i in Enumerable.Range(0, n).OrderBy(_ => rng.Next())) top.Add(i, scores[i]);
            var expected = Enumerable.Range(0, n).OrderByDescending(i => scores[i]).ThenBy(i => i).Take(k).ToArray();
            Assert.Equal(expected, top.ToArray().Select(r => r.Row));
        }
    }

    /// <summary>The HNSW recall test: behaviour (recall against the exact index), not timing.</summary>
    [Fact]
    public void Hnsw_recall_at_10_is_at_least_0_95_against_exact_search()
    {
        const int n = 20_000, d = 128;
        var rows = Rows(n, d, seed: 11, rank: 24);
        var queries = Rows(300, d, seed: 12, rank: 24);
        var exact = ExactVectorIndex.FromRows(rows, d);
        var truth = exact.SearchBatch(queries, 10);
        var dir = TestUtil.TempDir();
        foreach (var storage in new[] { VectorStorage.Float32, VectorStorage.Int8 })
        {
            using var hnsw = HnswVectorIndex.Build(rows, d, new HnswOptions { Storage = storage, Connectivity = 16, ExpansionAdd = 64, ExpansionSearch = 64 });
            Assert.Equal(n, hnsw.Count);
            if (storage == VectorStorage.Int8) { hnsw.Rerank = exact; hnsw.RerankFactor = 3; }
            var found = new ScoredRow[queries.Length / d][];
            for (int q = 0; q < found.Length; q++) found[q] = hnsw.Search(queries.AsSpan(q * d, d), 10);
            double recall = Recall(truth, found);
            output.WriteLine($"HNSW {storage}{(hnsw.Rerank is null ? "" : " + exact re-scoring")}: recall@10 {recall:F4} over {found.Length} queries; {hnsw.MemoryBytes / 1048576.0:F1} MiB");
            Assert.True(recall >= 0.95, $"{storage}: recall@10 {recall:F4} < 0.95");
            // Scores are cosines of the stored rows (graph alone: within the storage's precision).
            var q0 = queries.AsSpan(0, d);
            foreach (var r in found[0]) Assert.Equal(TensorPrimitives.Dot(rows.AsSpan(r.Row * d, d), q0), r.Score, storage == VectorStorage.Float32 || hnsw.Rerank is not null ? 4 : 2);

            // Saved, loaded and memory-mapped, it answers the same.
            var path = Path.Combine(dir, $"{storage}.usearch");
            hnsw.Save(path);
            using var loaded = HnswVectorIndex.Load(path);
            using var viewed = HnswVectorIndex.Load(path, view: true);
            loaded.ExpansionSearch = viewed.ExpansionSearch = hnsw.ExpansionSearch;
            loaded.Rerank = viewed.Rerank = hnsw.Rerank;
            loaded.RerankFactor = viewed.RerankFactor = hnsw.RerankFactor;
            Assert.Equal(n, loaded.Count);
            Assert.Equal(d, viewed.Dimensions);
            for (int q = 0; q < 20; q++)
            {
                Assert.Equal(found[q].Select(r => r.Row), loaded.Search(queries.AsSpan(q * d, d), 10).Select(r => r.Row));
                Assert.Equal(found[q].Select(r => r.Row), viewed.Search(queries.AsSpan(q * d, d), 10).Select(r => r.Row));
            }
            Assert.Throws<ClipGenException>(() => viewed.Add(n, rows.AsSpan(0, d)));
        }
    }

    [Fact]
    public void Hnsw_rows_can_be_removed_and_concurrent_searches_agree()
    {
        const int d = 32;
        var rows = Rows(3000, d, seed: 13, rank: 8);
        using var hnsw = HnswVectorIndex.Build(rows, d, new HnswOptions { ExpansionSearch = 200 });
        var q = rows.AsSpan(17 * d, d).ToArray();
        Assert.Equal(17, hnsw.Search(q, 1)[0].Row);
        Assert.True(hnsw.Remove(17));
        Assert.False(hnsw.Contains(17));
        Assert.DoesNotContain(hnsw.Search(q, 50), r => r.Row == 17);
        Assert.Throws<ClipGenException>(() => hnsw.Add(18, rows.AsSpan(0, d))); // row 18 is there already
        Assert.Throws<ClipGenException>(() => hnsw.Search(new float[d + 1], 3));
        // Many more concurrent searches than USearch has thread slots: all answer, and as a single thread does.
        var sequential = Enumerable.Range(0, 64).Select(i => hnsw.Search(rows.AsSpan(i * d, d), 5)).ToArray();
        var parallel = new ScoredRow[64][];
        Parallel.For(0, 64, new ParallelOptions { MaxDegreeOfParallelism = 16 }, i => parallel[i] = hnsw.Search(rows.AsSpan(i * d, d), 5));
        for (int i = 0; i < 64; i++) Assert.Equal(sequential[i], parallel[i]);
    }

    [Fact]
    public void Embedding_index_search_is_unchanged_for_the_file_format()
    {
        // An index written as before loads and searches through the exact index.
        const int d = 8;
        var rows = Rows(30, d, seed: 14);
        var dir = TestUtil.TempDir();
        var path = Path.Combine(dir, "e.safetensors");
        new EmbeddingIndex("m", d, Enumerable.Range(0, 30).Select(i => $"img{i}.png").ToList(), rows).Save(path);
        var index = EmbeddingIndex.Load(path);
        var hits = index.Search(rows.AsSpan(3 * d, d), 4);
        Assert.Equal("img3.png", hits[0].File);
        Assert.Equal(1.0, hits[0].Score, 5);
        Assert.Equal(BruteForce(rows, d, rows.AsSpan(3 * d, d), 4).Select(b => b.Row), hits.Select(h => h.Row));
    }

    internal static double Recall(ScoredRow[][] truth, ScoredRow[][] found)
    {
        double sum = 0;
        for (int q = 0; q < truth.Length; q++)
        {
            var set = truth[q].Select(r => r.Row).ToHashSet();
            sum += found[q].Count(r => set.Contains(r.Row)) / (double)truth[q].Length;
        }
        return sum / truth.Length;
    }
}
