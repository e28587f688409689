using System.Numerics.Tensors;
using Cloud.Unum.USearch;
using static ClipGen.Indexing.USearchNative;

namespace ClipGen.Indexing;

/// <summary>Settings of an <see cref="HnswVectorIndex"/> (USearch's names in brackets).</summary>
public sealed record HnswOptions
{
    /// <summary>How USearch stores the vectors: float32, or int8 (a quarter of the memory; slightly lower recall).</summary>
    public VectorStorage Storage { get; init; } = VectorStorage.Float32;

    /// <summary>Graph edges per node [connectivity, M]. More: higher recall, more memory, slower build.</summary>
    public int Connectivity { get; init; } = 32;

    /// <summary>Candidates kept while inserting [expansion_add, efConstruction].</summary>
    public int ExpansionAdd { get; init; } = 128;

    /// <summary>Candidates kept while searching [expansion_search, ef]; at least k is used. Can be changed later.</summary>
    public int ExpansionSearch { get; init; } = 128;

    /// <summary>Threads that insert in parallel while building (0: all cores).</summary>
    public int Threads { get; init; }

    internal void Validate()
    {
        if (Connectivity < 2 || Connectivity > 1024) throw new ClipGenException($"HNSW connectivity must be between 2 and 1024, not {Connectivity}");
        if (ExpansionAdd < 1 || ExpansionAdd > 1 << 16) throw new ClipGenException($"HNSW expansion_add must be between 1 and 65536, not {ExpansionAdd}");
        if (ExpansionSearch < 1 || ExpansionSearch > 1 << 16) throw new ClipGenException($"HNSW expansion_search must be between 1 and 65536, not {ExpansionSearch}");
        if (Threads < 0) throw new ClipGenException($"threads must not be negative, not {Threads}");
    }
}

/// <summary>
/// Approximate nearest-neighbour search over unit rows with a USearch HNSW graph (cosine metric; keys are row numbers).
/// Building inserts rows from all cores; the index saves to one file (<c>.usearch</c>) that loads back or is
/// memory-mapped (<see cref="Load"/> with <c>view</c>). With <see cref="Rerank"/> set to the exact rows, each search
/// takes <see cref="RerankFactor"/>·k candidates from the graph and re-scores them exactly, which recovers the
/// precision lost by int8 storage. Thread-safe for concurrent searches; adds and removes need the caller's lock
/// against searches.
/// </summary>
public sealed class HnswVectorIndex : IVectorIndex, IDisposable
{
    nint _index;
    readonly SemaphoreSlim _slots;  // USearch serves at most `threads` concurrent calls
    readonly int _threads;

    HnswVectorIndex(nint index, int dimensions, VectorStorage storage, int threads)
    {
        _index = index;
        Dimensions = dimensions;
        Storage = storage;
        _threads = threads;
        _slots = new SemaphoreSlim(threads, threads);
        usearch_change_threads_add(_index, (nuint)threads, out var e1); Check(e1, "USearch");
        usearch_change_threads_search(_index, (nuint)threads, out var e2); Check(e2, "USearch");
    }

    static unsafe nint Init(InitOptions options, out nint error) => usearch_init(&options, out error);

    /// <summary>An empty index.</summary>
    public static HnswVectorIndex Create(int dimensions, HnswOptions? options = null)
    {
        options ??= new HnswOptions();
        options.Validate();
        if (dimensions <= 0) throw new ArgumentOutOfRangeException(nameof(dimensions), dimensions, "the dimensions must be positive");
        var init = new InitOptions
        {
            // Rows are normalised before they are added, so the inner product is the cosine at a third of the work; int8
            // rows lose their unit length in rounding, and USearch's int8 cosine normalises them again.
            MetricKind = options.Storage == VectorStorage.Int8 ? MetricKind.Cos : MetricKind.Ip,
            Quantization = options.Storage == VectorStorage.Int8 ? ScalarKind.Int8 : ScalarKind.Float32,
            Dimensions = (nuint)dimensions,
            Connectivity = (nuint)options.Connectivity,
            ExpansionAdd = (nuint)options.ExpansionAdd,
            ExpansionSearch = (nuint)options.ExpansionSearch,
        };
        var index = Init(init, out var error);
        Check(error, "cannot create the USearch index");
        return new HnswVectorIndex(index, dimensions, options.Storage, options.Threads > 0 ? options.Threads : Environment.ProcessorCount);
    }

    /// <summary>Builds an index of rows 0..N−1 of <paramref name="rows"/> (row-major, normalised here), inserting from all cores.</summary>
    public static HnswVectorIndex Build(ReadOnlyMemory<float> rows, int dimensions, HnswOptions? options = null, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        if (dimensions <= 0 || rows.Length % dimensions != 0) throw new ArgumentException($"{rows.Length} values do not make rows of {dimensions}", nameof(rows));
        int n = rows.Length / dimensions;
        var index = Create(dimensions, options);
        try
        {
            index.Reserve(n);
            int done = 0;
            Parallel.For(0, n, new ParallelOptions { MaxDegreeOfParallelism = index._threads, CancellationToken = cancel }, () => new float[dimensions], (i, _, buffer) =>
            {
                index.Add(i, rows.Span.Slice(i * dimensions, dimensions), buffer);
                int d = Interlocked.Increment(ref done);
                if (progress is not null && d % 10000 == 0) progress.Report(d);
                return buffer;
            }, _ => { });
            progress?.Report(n);
            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>Builds an index over the live rows of an exact index (same row numbers).</summary>
    public static HnswVectorIndex Build(ExactVectorIndex exact, HnswOptions? options = null, IProgress<int>? progress = null, CancellationToken cancel = default)
    {
        ArgumentNullException.ThrowIfNull(exact);
        var index = Create(exact.Dimensions, options);
        try
        {
            index.Reserve(exact.Capacity);
            int done = 0;
            Parallel.For(0, exact.Capacity, new ParallelOptions { MaxDegreeOfParallelism = index._threads, CancellationToken = cancel }, i =>
            {
                if (!exact.Contains(i)) return;
                index.Add(i, exact.Get(i));
                int d = Interlocked.Increment(ref done);
                if (progress is not null && d % 10000 == 0) progress.Report(d);
            });
            return index;
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads an index saved by <see cref="Save"/>. With <paramref name="view"/> the file is memory-mapped instead of read
    /// (it must then stay unchanged while the index is open, and the index is read-only).
    /// </summary>
    public static HnswVectorIndex Load(string path, bool view = false, int threads = 0)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new ClipGenException($"HNSW index not found: {path}");
        var init = new InitOptions { MetricKind = MetricKind.Cos, Quantization = ScalarKind.Float32 };
        var index = Init(init, out var error);
        Check(error, "cannot create the USearch index");
        if (view) usearch_view(index, path, out error);
        else usearch_load(index, path, out error);
        if (error != 0)
        {
            usearch_free(index, out _);
            Check(error, $"{path}: not a USearch index");
        }
        int dims = (int)usearch_dimensions(index, out error);
        Check(error, path);
        // The stored scalar kind is not exposed by the C API; it only matters for MemoryBytes and is reported as float32.
        var result = new HnswVectorIndex(index, dims, VectorStorage.Float32, threads > 0 ? threads : Environment.ProcessorCount) { IsView = view };
        if (!view) result.Reserve(result.Count);
        return result;
    }

    public int Dimensions { get; }

    /// <summary>The storage it was created with (<see cref="VectorStorage.Float32"/> for loaded indexes).</summary>
    public VectorStorage Storage { get; }

    /// <summary>Whether the index is a read-only memory map of its file.</summary>
    public bool IsView { get; private init; }

    public int Count
    {
        get
        {
            var n = usearch_size(Handle, out var error);
            Check(error, "USearch");
            return (int)n;
        }
    }

    /// <summary>Bytes USearch holds for the graph and vectors.</summary>
    public long MemoryBytes
    {
        get
        {
            var n = usearch_memory_usage(Handle, out var error);
            Check(error, "USearch");
            return (long)n;
        }
    }

    /// <summary>Size of the file <see cref="Save"/> writes.</summary>
    public long SerializedBytes
    {
        get
        {
            var n = usearch_serialized_length(Handle, out var error);
            Check(error, "USearch");
            return (long)n;
        }
    }

    public int Connectivity => (int)usearch_connectivity(Handle, out _);

    /// <summary>Candidates kept while searching (ef); raising it raises recall and latency.</summary>
    public int ExpansionSearch
    {
        get => (int)usearch_expansion_search(Handle, out _);
        set
        {
            if (value < 1 || value > 1 << 16) throw new ClipGenException($"HNSW expansion_search must be between 1 and 65536, not {value}");
            usearch_change_expansion_search(Handle, (nuint)value, out var error);
            Check(error, "USearch");
        }
    }

    /// <summary>Exact rows (same row numbers) used to re-score candidates; null searches the graph alone.</summary>
    public ExactVectorIndex? Rerank { get; set; }

    /// <summary>Candidates per result taken from the graph when <see cref="Rerank"/> is set (default 4).</summary>
    public int RerankFactor { get; set; } = 4;

    nint Handle => _index != 0 ? _index : throw new ObjectDisposedException(nameof(HnswVectorIndex));

    /// <summary>Makes room for <paramref name="capacity"/> rows in all.</summary>
    public void Reserve(int capacity)
    {
        usearch_reserve(Handle, (nuint)Math.Max(capacity, 1), out var error);
        Check(error, "USearch: cannot reserve memory");
        usearch_change_threads_add(Handle, (nuint)_threads, out error); Check(error, "USearch");
        usearch_change_threads_search(Handle, (nuint)_threads, out error); Check(error, "USearch");
    }

    /// <summary>Adds <paramref name="vector"/> (normalised here) as <paramref name="row"/>.</summary>
    public void Add(int row, ReadOnlySpan<float> vector) => Add(row, vector, new float[Dimensions]);

    unsafe void Add(int row, ReadOnlySpan<float> vector, float[] buffer)
    {
        if (IsView) throw new ClipGenException("a memory-mapped HNSW index is read-only");
        if (row < 0) throw new ArgumentOutOfRangeException(nameof(row), row, "row numbers are not negative");
        Normalize(vector, buffer);
        nint error;
        _slots.Wait();
        try
        {
            fixed (float* p = buffer) usearch_add(Handle, (ulong)row, p, ScalarKind.Float32, out error);
        }
        finally { _slots.Release(); }
        Check(error, $"USearch: cannot add row {row}");
    }

    /// <summary>Removes a row; false if it was not there.</summary>
    public bool Remove(int row)
    {
        if (IsView) throw new ClipGenException("a memory-mapped HNSW index is read-only");
        _slots.Wait();
        try
        {
            var n = usearch_remove(Handle, (ulong)row, out var error);
            Check(error, "USearch");
            return n > 0;
        }
        finally { _slots.Release(); }
    }

    public bool Contains(int row) => usearch_contains(Handle, (ulong)row, out _);

    void Normalize(ReadOnlySpan<float> vector, Span<float> destination)
    {
        if (vector.Length != Dimensions) throw new ClipGenException($"a vector of {vector.Length} dimensions cannot go into an index of {Dimensions}");
        float norm = TensorPrimitives.Norm(vector);
        if (!float.IsFinite(norm)) throw new ClipGenException("a vector with NaN or infinite values cannot be indexed");
        TensorPrimitives.Multiply(vector, norm > 0 ? 1 / norm : 0, destination);
    }

    public ScoredRow[] Search(ReadOnlySpan<float> query, int k)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be positive");
        var q = new float[Dimensions];
        Normalize(query, q);
        var rerank = Rerank;
        int candidates = rerank is null ? k : checked(k * Math.Max(1, RerankFactor));
        var found = SearchGraph(q, candidates);
        if (rerank is null) return found;
        var top = new TopK(k);
        foreach (var c in found)
            if (rerank.Contains(c.Row)) top.Add(c.Row, TensorPrimitives.Dot(rerank.Get(c.Row), q));
        return top.ToArray();
    }

    unsafe ScoredRow[] SearchGraph(float[] q, int count)
    {
        var keys = new ulong[count];
        var distances = new float[count];
        nuint n;
        nint error;
        _slots.Wait();
        try
        {
            fixed (float* pq = q)
            fixed (ulong* pk = keys)
            fixed (float* pd = distances)
                n = usearch_search(Handle, pq, ScalarKind.Float32, (nuint)count, pk, pd, out error);
        }
        finally { _slots.Release(); }
        Check(error, "USearch search");
        var result = new ScoredRow[(int)n];
        for (int i = 0; i < result.Length; i++) result[i] = new ScoredRow((int)keys[i], 1 - distances[i]);
        // USearch returns ascending distance; equal distances keep USearch's order.
        return result;
    }

    /// <summary>Writes the index to <paramref name="path"/> (a temporary file beside it, then a rename).</summary>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            _slots.Wait();
            try { usearch_save(Handle, temp, out var error); Check(error, $"{path}: cannot save the HNSW index"); }
            finally { _slots.Release(); }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            try { if (File.Exists(temp)) File.Delete(temp); } catch (IOException) { }
        }
    }

    public void Dispose()
    {
        var index = Interlocked.Exchange(ref _index, 0);
        if (index != 0) usearch_free(index, out _);
        _slots.Dispose();
    }
}
