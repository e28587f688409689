using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ClipGen.Text;

/// <summary>
/// The merge ranks as a flat open-addressing table: one multiply-shift hash and linear probing over 64-bit slots, each
/// holding a whole entry (left id: 21 bits, right id: 21 bits, rank + 1: 22 bits; 0 = empty), so a lookup reads one slot
/// and usually one cache line. At most half full: 131,072 slots (1 MiB) for OpenAI's 48,894 merges (three quarters full,
/// 512 KiB, measured no faster: a miss then probes about 8 slots). It replaces a <c>Dictionary&lt;long, int&gt;</c>, whose comparer
/// call, bucket array and 16-byte entries cost an interface call and two or three dependent loads per lookup.
/// Immutable once built.
/// </summary>
sealed class PairRankTable
{
    /// <summary>Ids must be below this (2,097,152).</summary>
    public const int MaxId = 1 << IdBits;
    /// <summary>Ranks must be below this (4,194,303).</summary>
    public const int MaxRank = (1 << RankBits) - 1;
    const int IdBits = 21, RankBits = 22;
    const ulong RankMask = (1UL << RankBits) - 1;

    readonly ulong[] _slots;
    readonly int _shift;
    readonly int _mask;

    /// <summary>An empty table with room for <paramref name="count"/> pairs.</summary>
    public PairRankTable(int count)
    {
        int size = 16;
        while (size < 2 * count) size *= 2;
        _slots = new ulong[size];
        _shift = 64 - System.Numerics.BitOperations.Log2((uint)size);
        _mask = size - 1;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static ulong Key(int left, int right) => ((ulong)(uint)left << IdBits) | (uint)right;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    int Home(ulong key) => (int)((key * 0x9E3779B97F4A7C15UL) >> _shift);

    /// <summary>Sets the rank of a pair; a pair set twice keeps the last rank (Python's <c>dict(zip(merges, range(...)))</c>).</summary>
    public void Set(int left, int right, int rank)
    {
        if ((uint)left >= MaxId || (uint)right >= MaxId) throw new ArgumentOutOfRangeException(nameof(left), $"token ids must be below {MaxId:N0}");
        if ((uint)rank >= MaxRank) throw new ArgumentOutOfRangeException(nameof(rank), $"at most {MaxRank:N0} merges");
        ulong key = Key(left, right), slot = (key << RankBits) | ((uint)rank + 1UL);
        var slots = _slots;
        for (int i = Home(key); ; i = (i + 1) & _mask)
        {
            if (slots[i] == 0 || slots[i] >> RankBits == key)
            {
                slots[i] = slot;
                return;
            }
        }
    }

    /// <summary>The rank of a pair, or <see cref="int.MaxValue"/> if it is not a merge.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Rank(int left, int right)
    {
        ulong key = Key(left, right);
        var slots = _slots;
        int i = Home(key);
        while (true)
        {
            ulong s = slots[i];
            if (s >> RankBits == key) return (int)(s & RankMask) - 1;
            if (s == 0) return int.MaxValue;
            i = (i + 1) & _mask;
        }
    }
}

/// <summary>
/// One thread's word cache: word → ids, stored flat so that a new word allocates nothing. Each word is one record in an
/// int arena (its length in characters, its number of ids, its characters two to an int, its ids), and an
/// open-addressing table of 64-bit slots (hash &lt;&lt; 32 | record offset + 1), at most three quarters full, finds it; the
/// hash in the slot means a probe rarely reads a record that is not the word. A record is about 36 bytes for a 7-letter
/// word and the table 8–11 bytes per word, against about 150 for a string key, an int[] value and a dictionary entry,
/// so the cache evicts less of the merge table from the CPU caches. It holds at most <c>capacity</c> words and 16 ints
/// per word of capacity; when either runs out it is emptied (as the dictionary it replaces was): a counter reset and
/// clearing the table. A word too long for the empty arena is not cached. Not thread-safe: one per thread.
/// </summary>
sealed class WordCache
{
    const int Header = 2; // character count, id count

    readonly int _capacity;
    readonly int _arenaLimit;
    ulong[] _table;     // slot → hash << 32 | record offset + 1; 0 = empty
    int _tableMask;
    int _count;
    int[] _arena;
    int _used;

    public WordCache(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _arenaLimit = (int)Math.Min(Math.Max(16L * capacity, 1 << 16), Array.MaxLength);
        _table = new ulong[TableSize(Math.Min(capacity, 1024))];
        _tableMask = _table.Length - 1;
        _arena = new int[Math.Min(_arenaLimit, 16 * 1024)];
    }

    /// <summary>The number of cached words.</summary>
    public int Count => _count;

    static int TableSize(int words)
    {
        int size = 16;
        while (size - size / 4 < words) size *= 2;
        return size;
    }

    static int RecordLength(int chars, int ids) => Header + (chars + 1) / 2 + ids;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Hash(ReadOnlySpan<char> word) => string.GetHashCode(word);

    /// <summary>The cached ids of <paramref name="word"/> (whose <see cref="Hash"/> is <paramref name="hash"/>), if any.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(ReadOnlySpan<char> word, int hash, out ReadOnlySpan<int> ids)
    {
        var table = _table;
        for (int i = hash & _tableMask; ; i = (i + 1) & _tableMask)
        {
            ulong slot = table[i];
            if (slot == 0) break;
            if ((int)(slot >> 32) != hash) continue;
            int at = (int)(uint)slot - 1;
            var arena = _arena;
            int chars = arena[at];
            if (chars == word.Length && Chars(arena, at, chars).SequenceEqual(word))
            {
                ids = arena.AsSpan(at + Header + (chars + 1) / 2, arena[at + 1]);
                return true;
            }
        }
        ids = default;
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static ReadOnlySpan<char> Chars(int[] arena, int at, int chars) =>
        MemoryMarshal.Cast<int, char>(arena.AsSpan(at + Header, (chars + 1) / 2))[..chars];

    /// <summary>Caches a word that <see cref="TryGet"/> did not find.</summary>
    public void Add(ReadOnlySpan<char> word, int hash, ReadOnlySpan<int> ids)
    {
        long length = Header + (word.Length + 1L) / 2 + ids.Length;
        if (length > _arenaLimit) return;
        if (_count == _capacity || _used + length > _arenaLimit) Clear();
        if (_used + length > _arena.Length) Array.Resize(ref _arena, (int)Math.Min(Math.Max(2L * _arena.Length, _used + length), _arenaLimit));
        if (_count + 1 > _table.Length - _table.Length / 4) GrowTable();

        int at = _used;
        var record = _arena.AsSpan(at, (int)length);
        record[0] = word.Length;
        record[1] = ids.Length;
        word.CopyTo(MemoryMarshal.Cast<int, char>(record[Header..]));
        ids.CopyTo(record[(Header + (word.Length + 1) / 2)..]);
        _used += (int)length;
        Insert(hash, at);
        _count++;
    }

    void Insert(int hash, int at)
    {
        int i = hash & _tableMask;
        while (_table[i] != 0) i = (i + 1) & _tableMask;
        _table[i] = ((ulong)(uint)hash << 32) | (uint)(at + 1);
    }

    void Clear()
    {
        Array.Clear(_table);
        _count = _used = 0;
    }

    void GrowTable()
    {
        _table = new ulong[TableSize(Math.Min(2 * _count + 2, _capacity))];
        _tableMask = _table.Length - 1;
        for (int at = 0; at < _used; at += RecordLength(_arena[at], _arena[at + 1]))
            Insert(Hash(Chars(_arena, at, _arena[at])), at);
    }
}
