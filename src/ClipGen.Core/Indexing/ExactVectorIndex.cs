using System.Numerics.Tensors;

namespace ClipGen.Indexing;

/// <summary>How an index stores its rows.</summary>
public enum VectorStorage
{
    /// <summary>4 bytes per value, exact scores.</summary>
    Float32,

    /// <summary>
    /// 1 byte per value plus one float per row: each row is scaled so that its largest magnitude becomes 127 and
    /// rounded (symmetric absmax quantisation). A quarter of the memory; scores are off by about 1e-3 for unit rows.
    /// </summary>
    Int8,
}

/// <summary>A nearest-neighbour index over unit-length rows: cosine similarity is the dot product.</summary>
public interface IVectorIndex
{
    /// <summary>Rows held (removed rows excluded).</summary>
    int Count { get; }

    int Dimensions { get; }

    /// <summary>The <paramref name="k"/> rows most similar to <paramref name="query"/> (normalised here), best first.</summary>
    ScoredRow[] Search(ReadOnlySpan<float> query, int k);
}

/// <summary>
/// Exact search: every row is scored against the query with SIMD dot products (<see cref="TensorPrimitives"/>) and the
/// best <c>k</c> are kept in a bounded heap (<see cref="TopK"/>). Rows are normalised when added, so scores are
/// cosine similarities. Large scans are split across cores; batches of queries are scored block by block so that each
/// row is read from memory once per group of queries. Rows can be added, replaced and removed (removed rows are
/// skipped and their slots reused). Reads may run concurrently; writes need the caller's lock.
/// </summary>
public sealed class ExactVectorIndex : IVectorIndex
{
    const int QueryGroup = 16;      // queries scored together per pass over a block of rows
    const int RowBlock = 256;       // rows per block (256 × 512 floats = 512 KB)
    const long ParallelThreshold = 1 << 20; // values scanned before one query is split across cores

    float[] _f32 = [];
    sbyte[] _i8 = [];
    float[] _scales = [];
    bool[] _removed = [];
    readonly Stack<int> _free = new();
    int _rows;   // slots in use (live + removed)
    int _live;

    public ExactVectorIndex(int dimensions, VectorStorage storage = VectorStorage.Float32)
    {
        if (dimensions <= 0) throw new ArgumentOutOfRangeException(nameof(dimensions), dimensions, "the dimensions must be positive");
        Dimensions = dimensions;
        Storage = storage;
    }

    /// <summary>
    /// An index over <paramref name="rows"/> (row-major [N, <paramref name="dimensions"/>]). With
    /// <see cref="VectorStorage.Float32"/> and rows that are already unit length (within 1e-3) the array is used as it
    /// is, without a copy; otherwise the rows are normalised into the index's own storage.
    /// </summary>
    public static ExactVectorIndex FromRows(float[] rows, int dimensions, VectorStorage storage = VectorStorage.Float32)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var index = new ExactVectorIndex(dimensions, storage);
        if (rows.Length % dimensions != 0)
            throw new ArgumentException($"{rows.Length} values do not make rows of {dimensions}", nameof(rows));
        int n = checked((int)(rows.Length / dimensions));
        if (storage == VectorStorage.Float32 && AllUnit(rows, n, dimensions))
        {
            index._f32 = rows;
            index._removed = new bool[n];
            index._rows = index._live = n;
            return index;
        }
        index.Reserve(n);
        for (int i = 0; i < n; i++) index.Add(rows.AsSpan(i * dimensions, dimensions));
        return index;
    }

    static bool AllUnit(float[] rows, int n, int d)
    {
        for (int i = 0; i < n; i++)
        {
            var norm = TensorPrimitives.Norm(rows.AsSpan(i * d, d));
            if (Math.Abs(norm - 1) > 1e-3f) return false;
        }
        return true;
    }

    public int Dimensions { get; }
    public VectorStorage Storage { get; }
    public int Count => _live;

    /// <summary>Slots in use, removed ones included: row numbers are below this.</summary>
    public int Capacity => _rows;

    /// <summary>Bytes held by the rows (and, for int8, their scales).</summary>
    public long MemoryBytes => Storage == VectorStorage.Float32 ? (long)_f32.Length * sizeof(float) : _i8.LongLength + (long)_scales.Length * sizeof(float);

    /// <summary>Whether <paramref name="row"/> holds a vector.</summary>
    public bool Contains(int row) => row >= 0 && row < _rows && !_removed[row];

    /// <summary>Makes room for <paramref name="rows"/> rows in all.</summary>
    public void Reserve(int rows)
    {
        if (rows <= _removed.Length) return;
        Array.Resize(ref _removed, rows);
        if (Storage == VectorStorage.Float32) Array.Resize(ref _f32, checked(rows * Dimensions));
        else
        {
            Array.Resize(ref _i8, checked(rows * Dimensions));
            Array.Resize(ref _scales, rows);
        }
    }

    /// <summary>Adds a row (normalised here) and returns its row number (a removed row's slot is reused).</summary>
    public int Add(ReadOnlySpan<float> vector)
    {
        int row;
        if (_free.Count > 0) row = _free.Pop();
        else
        {
            if (_rows == _removed.Length) Reserve(Math.Max(16, _rows * 2));
            row = _rows++;
        }
        Write(row, vector);
        _removed[row] = false;
        _live++;
        return row;
    }

    /// <summary>Replaces the vector of a live row.</summary>
    public void Set(int row, ReadOnlySpan<float> vector)
    {
        if (!Contains(row)) throw new ArgumentOutOfRangeException(nameof(row), row, "no such row");
        Write(row, vector);
    }

    /// <summary>Removes a row; its number may be given to a later <see cref="Add"/>.</summary>
    public bool Remove(int row)
    {
        if (!Contains(row)) return false;
        _removed[row] = true;
        _free.Push(row);
        _live--;
        return true;
    }

    /// <summary>The stored (normalised, and for int8 dequantised) vector of a row.</summary>
    public float[] Get(int row)
    {
        if (!Contains(row)) throw new ArgumentOutOfRangeException(nameof(row), row, "no such row");
        var result = new float[Dimensions];
        if (Storage == VectorStorage.Float32) _f32.AsSpan(row * Dimensions, Dimensions).CopyTo(result);
        else
        {
            TensorPrimitives.ConvertChecked<sbyte, float>(_i8.AsSpan(row * Dimensions, Dimensions), result);
            TensorPrimitives.Multiply(result, _scales[row], result);
        }
        return result;
    }

    void Write(int row, ReadOnlySpan<float> vector)
    {
        if (vector.Length != Dimensions) throw new ClipGenException($"a vector of {vector.Length} dimensions cannot go into an index of {Dimensions}");
        float norm = TensorPrimitives.Norm(vector);
        if (!float.IsFinite(norm)) throw new ClipGenException("a vector with NaN or infinite values cannot be indexed");
        float inv = norm > 0 ? 1 / norm : 0;
        if (Storage == VectorStorage.Float32)
        {
            TensorPrimitives.Multiply(vector, inv, _f32.AsSpan(row * Dimensions, Dimensions));
            return;
        }
        Span<float> unit = Dimensions <= 4096 ? stackalloc float[Dimensions] : new float[Dimensions];
        TensorPrimitives.Multiply(vector, inv, unit);
        float max = MathF.Abs(TensorPrimitives.MaxMagnitude(unit)); // MaxMagnitude keeps the sign
        float scale = max > 0 ? max / 127f : 1;
        var dst = _i8.AsSpan(row * Dimensions, Dimensions);
        for (int i = 0; i < unit.Length; i++) dst[i] = (sbyte)Math.Clamp(MathF.Round(unit[i] / scale), -127, 127);
        _scales[row] = max > 0 ? scale : 0;
    }

    /// <summary>A unit-length copy of the query (zero stays zero); a wrong width or non-finite values are an error.</summary>
    float[] PrepareQuery(ReadOnlySpan<float> query)
    {
        if (query.Length != Dimensions) throw new ClipGenException($"the query has {query.Length} dimensions but the index {Dimensions}");
        float norm = TensorPrimitives.Norm(query);
        if (!float.IsFinite(norm)) throw new ClipGenException("the query holds NaN or infinite values");
        var q = new float[Dimensions];
        TensorPrimitives.Multiply(query, norm > 0 ? 1 / norm : 0, q);
        return q;
    }

    public ScoredRow[] Search(ReadOnlySpan<float> query, int k) => Search(query, k, null);

    /// <summary>As <see cref="Search(ReadOnlySpan{float}, int)"/>, over the rows <paramref name="filter"/> accepts.</summary>
    public ScoredRow[] Search(ReadOnlySpan<float> query, int k, Func<int, bool>? filter)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be positive");
        var q = PrepareQuery(query);
        long work = (long)_rows * Dimensions;
        int parts = work >= ParallelThreshold ? Math.Min(Environment.ProcessorCount, Math.Max(1, _rows / RowBlock)) : 1;
        if (parts <= 1)
        {
            var top = new TopK(k);
            ScanRows(0, _rows, [q], [top], filter);
            return top.ToArray();
        }
        var partial = new TopK[parts];
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, p =>
        {
            long start = (long)_rows * p / parts, end = (long)_rows * (p + 1) / parts;
            partial[p] = new TopK(k);
            ScanRows((int)start, (int)end, [q], [partial[p]], filter);
        });
        var merged = new TopK(k);
        foreach (var t in partial) merged.Merge(t);
        return merged.ToArray();
    }

    /// <summary>
    /// Exact top-<paramref name="k"/> of many queries (row-major [Q, D]), in parallel over groups of queries: each block
    /// of rows is read once per group, so the scan is bound by arithmetic rather than memory.
    /// </summary>
    public ScoredRow[][] SearchBatch(ReadOnlySpan<float> queries, int k)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be positive");
        if (queries.Length % Dimensions != 0) throw new ClipGenException($"{queries.Length} query values do not make rows of {Dimensions}");
        int n = queries.Length / Dimensions;
        var prepared = new float[n][];
        for (int i = 0; i < n; i++) prepared[i] = PrepareQuery(queries.Slice(i * Dimensions, Dimensions));
        var results = new ScoredRow[n][];
        int groups = (n + QueryGroup - 1) / QueryGroup;
        Parallel.For(0, groups, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, g =>
        {
            int first = g * QueryGroup, count = Math.Min(QueryGroup, n - first);
            var qs = prepared.AsSpan(first, count).ToArray();
            var tops = new TopK[count];
            for (int i = 0; i < count; i++) tops[i] = new TopK(k);
            ScanRows(0, _rows, qs, tops, null);
            for (int i = 0; i < count; i++) results[first + i] = tops[i].ToArray();
        });
        return results;
    }

    void ScanRows(int start, int end, float[][] queries, TopK[] tops, Func<int, bool>? filter)
    {
        int d = Dimensions;
        float[]? scratch = Storage == VectorStorage.Int8 ? new float[d] : null;
        for (int block = start; block < end; block += RowBlock)
        {
            int blockEnd = Math.Min(end, block + RowBlock);
            for (int qi = 0; qi < queries.Length; qi++)
            {
                var q = queries[qi];
                var top = tops[qi];
                for (int r = block; r < blockEnd; r++)
                {
                    if (_removed[r] || (filter is not null && !filter(r))) continue;
                    float score;
                    if (scratch is null) score = TensorPrimitives.Dot(_f32.AsSpan(r * d, d), q);
                    else
                    {
                        TensorPrimitives.ConvertChecked<sbyte, float>(_i8.AsSpan(r * d, d), scratch);
                        score = TensorPrimitives.Dot(scratch, q) * _scales[r];
                    }
                    top.Add(r, score);
                }
            }
        }
    }
}
