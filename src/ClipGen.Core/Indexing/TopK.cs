namespace ClipGen.Indexing;

/// <summary>A row of an index and its similarity to a query (higher is more similar).</summary>
public readonly record struct ScoredRow(int Row, float Score);

/// <summary>
/// The <c>k</c> best rows seen so far, in a bounded min-heap (<see cref="PriorityQueue{TElement, TPriority}"/>): a
/// scan of N rows costs O(N log k) and never sorts all N. Ties are broken by the lower row, so results do not depend
/// on how a scan was split between threads.
/// </summary>
public sealed class TopK
{
    /// <summary>Orders the heap worst-first: the lower score, then the higher row.</summary>
    sealed class WorstFirst : IComparer<ScoredRow>
    {
        public static readonly WorstFirst Instance = new();
        public int Compare(ScoredRow a, ScoredRow b)
        {
            int c = a.Score.CompareTo(b.Score);
            return c != 0 ? c : b.Row.CompareTo(a.Row);
        }
    }

    readonly PriorityQueue<ScoredRow, ScoredRow> _heap;

    public TopK(int k)
    {
        if (k <= 0) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be positive");
        K = k;
        _heap = new PriorityQueue<ScoredRow, ScoredRow>(Math.Min(k, 4096) + 1, WorstFirst.Instance);
    }

    public int K { get; }
    public int Count => _heap.Count;

    /// <summary>The score a row must beat to enter (−∞ while fewer than k rows were offered).</summary>
    public float Threshold => _heap.Count < K ? float.NegativeInfinity : _heap.Peek().Score;

    /// <summary>Offers a row; NaN scores are never kept.</summary>
    public void Add(int row, float score)
    {
        if (float.IsNaN(score)) return;
        var item = new ScoredRow(row, score);
        if (_heap.Count < K) _heap.Enqueue(item, item);
        else if (WorstFirst.Instance.Compare(item, _heap.Peek()) > 0) _heap.EnqueueDequeue(item, item);
    }

    /// <summary>Adds every row of another collector (merging per-thread results).</summary>
    public void Merge(TopK other)
    {
        foreach (var (item, _) in other._heap.UnorderedItems) Add(item.Row, item.Score);
    }

    /// <summary>The rows kept, best first (this sorts only the k kept rows).</summary>
    public ScoredRow[] ToArray()
    {
        var result = _heap.UnorderedItems.Select(e => e.Element).ToArray();
        Array.Sort(result, (a, b) => WorstFirst.Instance.Compare(b, a));
        return result;
    }
}
