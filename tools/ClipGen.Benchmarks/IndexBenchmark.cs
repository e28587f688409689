using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using ClipGen.Indexing;

namespace ClipGen.Benchmarks;

/// <summary>
/// Exact vs HNSW (USearch) search on seeded random unit vectors: build time, index size, memory, recall@k against the
/// exact index, and single-query latency (p50/p99) per search expansion.
/// <code>
/// dotnet run -c Release --project tools/ClipGen.Benchmarks -- index [--n 1000000] [--dims 512] [--queries 1000] [--k 10]
///     [--storage f32|i8] [--connectivity 32] [--expansion-add 128] [--ef 64,128,256,512] [--rerank 0|4] [--seed 1] [--save DIR]
/// </code>
/// </summary>
public static class IndexBenchmark
{
    public static int Run(string[] args)
    {
        string Opt(string name, string fallback) => BenchUtil.Option(args, name, fallback);
        int n = int.Parse(Opt("n", "1000000"), CultureInfo.InvariantCulture);
        int dims = int.Parse(Opt("dims", "512"), CultureInfo.InvariantCulture);
        int queries = int.Parse(Opt("queries", "1000"), CultureInfo.InvariantCulture);
        int k = int.Parse(Opt("k", "10"), CultureInfo.InvariantCulture);
        int seed = int.Parse(Opt("seed", "1"), CultureInfo.InvariantCulture);
        var storage = Opt("storage", "f32") == "i8" ? VectorStorage.Int8 : VectorStorage.Float32;
        int connectivity = int.Parse(Opt("connectivity", "32"), CultureInfo.InvariantCulture);
        int expansionAdd = int.Parse(Opt("expansion-add", "128"), CultureInfo.InvariantCulture);
        var efs = Opt("ef", "64,128,256,512").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var reranks = Opt("rerank", "0").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var saveDir = Opt("save", "");
        int intrinsic = int.Parse(Opt("intrinsic", "0"), CultureInfo.InvariantCulture);

        Console.WriteLine($"index benchmark: {n:N0} random unit vectors of {dims} (seed {seed}), {queries} random unit queries, k={k}" +
            (intrinsic > 0 ? $", drawn from a random {intrinsic}-dimensional subspace plus 10% isotropic noise" : ", isotropic") + "; " +
            $"{Environment.ProcessorCount} cores; load average {BenchUtil.LoadAverage()}");
        var clock = Stopwatch.StartNew();
        var basis = intrinsic > 0 ? RandomBasis(dims, intrinsic, seed + 17) : null;
        var rows = RandomUnitRows(n, dims, seed, basis);
        var qs = RandomUnitRows(queries, dims, seed + 1_000_003, basis);
        Console.WriteLine($"generated in {clock.Elapsed.TotalSeconds:F1} s");

        // Exact ground truth, batched over all cores.
        var exact = ExactVectorIndex.FromRows(rows, dims);
        clock.Restart();
        var truth = exact.SearchBatch(qs, k);
        double exactBatch = clock.Elapsed.TotalSeconds;
        var exactLatency = Latencies(queries: Math.Min(queries, 50), q => exact.Search(qs.AsSpan(q * dims, dims), k));
        Console.WriteLine(FormattableString.Invariant(
            $"exact: {queries} queries batched in {exactBatch:F1} s ({queries / exactBatch:F1} queries/s, all cores); one query: p50 {exactLatency.P50:F1} ms, p99 {exactLatency.P99:F1} ms (all cores)"));

        long rssBefore = CurrentRssBytes();
        clock.Restart();
        var options = new HnswOptions { Storage = storage, Connectivity = connectivity, ExpansionAdd = expansionAdd };
        using var hnsw = HnswVectorIndex.Build(rows, dims, options);
        double build = clock.Elapsed.TotalSeconds;
        long rssAfter = CurrentRssBytes();
        Console.WriteLine(FormattableString.Invariant(
            $"HNSW ({storage}, connectivity {connectivity}, expansion_add {expansionAdd}): built in {build:F1} s ({n / build:F0} vectors/s, {Environment.ProcessorCount} threads); USearch memory {hnsw.MemoryBytes / 1048576.0:F0} MiB, file {hnsw.SerializedBytes / 1048576.0:F0} MiB, RSS delta {(rssAfter - rssBefore) / 1048576.0:F0} MiB (the float32 rows themselves: {(long)n * dims * 4 / 1048576.0:F0} MiB)"));

        foreach (var rerank in reranks)
        {
            hnsw.Rerank = rerank > 0 ? exact : null;
            hnsw.RerankFactor = Math.Max(1, rerank);
            foreach (var ef in efs)
            {
                hnsw.ExpansionSearch = ef;
                var found = new ScoredRow[queries][];
                var lat = Latencies(queries, q => found[q] = hnsw.Search(qs.AsSpan(q * dims, dims), k));
                double recall = Recall(truth, found, k);
                Console.WriteLine(FormattableString.Invariant(
                    $"  ef {ef,4}{(rerank > 0 ? $", exact re-scoring of {rerank}·k" : "")}: recall@{k} {recall:F4}; one query (one thread): p50 {lat.P50:F2} ms, p99 {lat.P99:F2} ms"));
            }
        }

        if (saveDir.Length > 0)
        {
            var path = Path.Combine(saveDir, "bench.usearch");
            clock.Restart();
            hnsw.Save(path);
            double save = clock.Elapsed.TotalSeconds;
            clock.Restart();
            using var loaded = HnswVectorIndex.Load(path);
            double load = clock.Elapsed.TotalSeconds;
            clock.Restart();
            using var viewed = HnswVectorIndex.Load(path, view: true);
            double view = clock.Elapsed.TotalSeconds;
            Console.WriteLine(FormattableString.Invariant($"saved {new FileInfo(path).Length / 1048576.0:F0} MiB in {save:F1} s; loaded in {load:F1} s; memory-mapped in {view:F2} s"));
            File.Delete(path);
        }
        Console.WriteLine($"load average at the end {BenchUtil.LoadAverage()}");
        return 0;
    }

    /// <summary>A seeded random [dims, rank] matrix (Gaussian entries).</summary>
    static float[] RandomBasis(int dims, int rank, int seed)
    {
        var m = new float[dims * rank];
        var rng = new Random(seed);
        for (int i = 0; i < m.Length; i++) m[i] = (float)Gaussian(rng);
        return m;
    }

    static double Gaussian(Random rng)
    {
        double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>
    /// Seeded Gaussian rows scaled to unit length: isotropic, or (with <paramref name="basis"/> [dims, r]) basis·z plus
    /// isotropic noise of a tenth of the norm, for z ~ N(0, I_r): random data with the low intrinsic dimension of real
    /// embeddings.
    /// </summary>
    public static float[] RandomUnitRows(int n, int dims, int seed, float[]? basis = null)
    {
        var rows = new float[(long)n * dims];
        int parts = Environment.ProcessorCount * 4;
        Parallel.For(0, parts, p =>
        {
            var rng = new Random(unchecked(seed * 7919 + p));
            int from = (int)((long)n * p / parts), to = (int)((long)n * (p + 1) / parts);
            for (int i = from; i < to; i++)
            {
                var row = rows.AsSpan(i * dims, dims);
                for (int j = 0; j < dims; j += 2)
                {
                    // Box–Muller
                    double u1 = 1 - rng.NextDouble(), u2 = rng.NextDouble();
                    double r = Math.Sqrt(-2 * Math.Log(u1));
                    row[j] = (float)(r * Math.Cos(2 * Math.PI * u2));
                    if (j + 1 < dims) row[j + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
                }
                if (basis is not null)
                {
                    // row (isotropic so far) becomes the noise: unit(basis·z) + 0.1·unit(noise)
                    int r = basis.Length / dims;
                    var z = new float[r];
                    for (int j = 0; j < r; j++) z[j] = (float)Gaussian(rng);
                    var noise = row.ToArray();
                    TensorPrimitives.Multiply(noise, 0.1f / TensorPrimitives.Norm(noise), noise);
                    for (int j = 0; j < dims; j++) row[j] = TensorPrimitives.Dot(basis.AsSpan(j * r, r), z);
                    TensorPrimitives.Multiply(row, 1 / TensorPrimitives.Norm(row), row);
                    TensorPrimitives.Add(row, noise, row);
                }
                TensorPrimitives.Multiply(row, 1 / TensorPrimitives.Norm(row), row);
            }
        });
        return rows;
    }

    /// <summary>Mean over queries of |found ∩ truth| / k.</summary>
    public static double Recall(ScoredRow[][] truth, ScoredRow[][] found, int k)
    {
        double sum = 0;
        for (int q = 0; q < truth.Length; q++)
        {
            var set = truth[q].Take(k).Select(r => r.Row).ToHashSet();
            sum += found[q].Take(k).Count(r => set.Contains(r.Row)) / (double)k;
        }
        return sum / truth.Length;
    }

    static (double P50, double P99) Latencies(int queries, Action<int> search)
    {
        for (int q = 0; q < Math.Min(queries, 5); q++) search(q); // warm-up
        var ms = new double[queries];
        for (int q = 0; q < queries; q++)
        {
            long t0 = Stopwatch.GetTimestamp();
            search(q);
            ms[q] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        }
        Array.Sort(ms);
        return (ms[(int)(0.50 * (queries - 1))], ms[(int)Math.Ceiling(0.99 * (queries - 1))]);
    }

    static long CurrentRssBytes()
    {
        GC.Collect();
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        return 0;
    }
}
