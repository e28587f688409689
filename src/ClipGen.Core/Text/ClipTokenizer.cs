// Why not Microsoft.ML.Tokenizers (2.0.1, referenced by ClipGen)?
// Its BpeTokenizer can be given a vocabulary and merges (BpeOptions), EndOfWordSuffix = "</w>", ByteLevel = true, a custom
// Normalizer and a custom PreTokenizer, so its merge step could in principle reproduce CLIP's ids. It cannot do the rest of
// CLIP's pipeline, which is where the exactness lives: ftfy, Python's html.unescape applied twice, Python's str.lower
// (İ → "i̇", final sigma), the regex module's \s, and a pre-tokenizer that works on code points (its RegexPreTokenizer
// runs a .NET Regex, whose \p{L} sees UTF-16 code units, so astral letters split). Those would all be ours anyway, as
// subclasses of its Normalizer/PreTokenizer that hand it strings; its Encode then allocates a string per piece and per
// token, which misses the 200,000 captions/s target, and it reads neither OpenAI's .txt.gz nor gives us control over
// the cache. So ClipGen implements the small BPE loop itself (below) on integer ids, with the rank table, the cache and
// the special-token rules of OpenAI's simple_tokenizer.py; see docs/tokenizer.md.

using System.Buffers;
using System.IO.Compression;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;

namespace ClipGen.Text;

/// <summary>
/// OpenAI CLIP's byte-level BPE tokenizer (clip/simple_tokenizer.py), giving the same ids as OpenAI's code.
/// Reads OpenAI's <c>bpe_simple_vocab_16e6.txt.gz</c> or Hugging Face's <c>vocab.json</c> + <c>merges.txt</c>.
/// Immutable apart from bounded per-thread word caches: safe for concurrent <see cref="Encode"/> calls.
/// </summary>
[SkipLocalsInit] // the stack buffers are always written before they are read
public sealed class ClipTokenizer : TextTokenizerBase
{
    /// <summary>CLIP's context length.</summary>
    public const int DefaultContextLength = 77;
    /// <summary>Merges CLIP takes from OpenAI's file: 49152 − 256 − 2.</summary>
    public const int OpenAIMergeCount = 49152 - 256 - 2;
    /// <summary>Default number of cached words.</summary>
    public const int DefaultCacheCapacity = 100_000;
    /// <summary>Words of more symbols than this use the heap merge (when the merge table allows it).</summary>
    const int LongWord = 128;

    public const string StartToken = "<|startoftext|>";
    public const string EndToken = "<|endoftext|>";

    readonly string?[] _idToToken;
    readonly byte[][] _idToBytes;
    readonly int[] _byteId = new int[256];
    readonly int[] _byteEndId = new int[256];
    readonly PairRankTable _ranks;            // (left id, right id) → merge rank
    readonly int[] _mergeResult;              // merge rank → id of the merged symbol
    // The rank of every pair of byte symbols a word starts with, indexed by byte: [first << 9 | (second is last ? 256 : 0) | second].
    // Dense, so the first ranks of a word come from a few hot cache lines rather than from all over the pair table.
    readonly int[] _bytePairRank = new int[256 * 512];
    readonly bool _ranksIncrease;             // every merge's parts come from earlier merges: the heap merge is exact
    // One word cache per thread: flat arrays, no synchronisation, no allocation per new word; bounded by clearing when full.
    readonly ThreadLocal<WordCache> _cache;
    readonly int _cacheCapacity;

    public override string Kind => TextTokenizers.ClipBpe;
    /// <summary>Id of "&lt;|startoftext|&gt;" (49406 in OpenAI's vocabulary).</summary>
    public int StartTokenId { get; }
    public override int? StartId => StartTokenId;
    public override int EndId { get; }
    public override int PadId => 0;
    public override int VocabSize => _idToToken.Length;
    /// <summary>Number of merges in use.</summary>
    public int MergeCount => _mergeResult.Length;

    ClipTokenizer(Dictionary<string, int> encoder, List<(string A, string B)> merges, string source, int cacheCapacity)
    {
        if (cacheCapacity < 0) throw new ArgumentOutOfRangeException(nameof(cacheCapacity));
        int size = 0;
        foreach (var id in encoder.Values)
        {
            if (id < 0) throw new ClipGenException($"{source}: negative token id {id}");
            size = Math.Max(size, id + 1);
        }
        if (size > PairRankTable.MaxId) throw new ClipGenException($"{source}: token id {size - 1} is too large (ids must be below {PairRankTable.MaxId:N0})");
        if (merges.Count > PairRankTable.MaxRank) throw new ClipGenException($"{source}: {merges.Count:N0} merges (at most {PairRankTable.MaxRank:N0} are supported)");
        _idToToken = new string?[size];
        foreach (var (tok, id) in encoder) _idToToken[id] = tok;
        _idToBytes = new byte[size][];
        for (int i = 0; i < size; i++) _idToBytes[i] = _idToToken[i] is { } t ? ByteLevel.ToBytes(t) : [];

        int Id(string token, string what) => encoder.TryGetValue(token, out int v) ? v
            : throw new ClipGenException($"{source}: the vocabulary has no entry for {what} '{token}'");

        for (int b = 0; b < 256; b++)
        {
            var sym = ByteLevel.Symbol(b).ToString();
            _byteId[b] = Id(sym, "byte symbol");
            _byteEndId[b] = Id(sym + "</w>", "byte symbol");
        }
        StartTokenId = Id(StartToken, "the start token");
        EndId = Id(EndToken, "the end token");

        _ranks = new PairRankTable(merges.Count);
        _mergeResult = new int[merges.Count];
        var lastProducer = new Dictionary<int, int>(merges.Count);
        var parts = new (int A, int B)[merges.Count];
        for (int r = 0; r < merges.Count; r++)
        {
            var (a, b) = merges[r];
            int ia = Id(a, $"merge {r + 1}'s left part"), ib = Id(b, $"merge {r + 1}'s right part");
            _ranks.Set(ia, ib, r); // a repeated pair keeps its last rank, as Python's dict(zip(merges, range(...)))
            _mergeResult[r] = Id(a + b, $"merge {r + 1}'s result");
            lastProducer[_mergeResult[r]] = r;
            parts[r] = (ia, ib);
        }
        for (int b1 = 0; b1 < 256; b1++)
            for (int b2 = 0; b2 < 256; b2++)
            {
                _bytePairRank[(b1 << 9) | b2] = _ranks.Rank(_byteId[b1], _byteId[b2]);
                _bytePairRank[(b1 << 9) | 256 | b2] = _ranks.Rank(_byteId[b1], _byteEndId[b2]);
            }
        _ranksIncrease = true;
        for (int r = 0; r < merges.Count && _ranksIncrease; r++)
        {
            var (ia, ib) = parts[r];
            if ((lastProducer.TryGetValue(ia, out int pa) && pa >= r) || (lastProducer.TryGetValue(ib, out int pb) && pb >= r))
                _ranksIncrease = false;
        }

        _cacheCapacity = cacheCapacity;
        _cache = new ThreadLocal<WordCache>(() => new WordCache(Math.Max(cacheCapacity, 1)));
    }

    // ---------------------------------------------------------------- loading

    /// <summary>
    /// Loads a vocabulary: OpenAI's merges file (gzip or plain text), Hugging Face's <c>vocab.json</c> (with <c>merges.txt</c>
    /// beside it), or a folder holding either.
    /// </summary>
    public static ClipTokenizer FromFile(string path, int cacheCapacity = DefaultCacheCapacity)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            var vj = Path.Combine(path, "vocab.json");
            if (File.Exists(vj)) return FromHuggingFace(vj, Path.Combine(path, "merges.txt"), cacheCapacity);
            var gz = Path.Combine(path, "bpe_simple_vocab_16e6.txt.gz");
            if (File.Exists(gz)) return FromOpenAI(gz, cacheCapacity);
            throw new ClipGenException($"{path}: the folder holds neither vocab.json + merges.txt nor bpe_simple_vocab_16e6.txt.gz");
        }
        if (!File.Exists(path)) throw new ClipGenException($"vocabulary file not found: {path}");
        if (Path.GetFileName(path).EndsWith(".json", StringComparison.OrdinalIgnoreCase))
            return FromHuggingFace(path, Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "merges.txt"), cacheCapacity);
        return FromOpenAI(path, cacheCapacity);
    }

    /// <summary>Loads OpenAI's <c>bpe_simple_vocab_16e6.txt.gz</c> (or the same file uncompressed).</summary>
    public static ClipTokenizer FromOpenAI(string path, int cacheCapacity = DefaultCacheCapacity)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new ClipGenException($"vocabulary file not found: {path}");
        using var f = File.OpenRead(path);
        return FromOpenAI(f, path, cacheCapacity);
    }

    /// <summary>Loads OpenAI's merges file from a stream (gzip is detected by its magic bytes).</summary>
    public static ClipTokenizer FromOpenAI(Stream stream, string sourceName = "stream", int cacheCapacity = DefaultCacheCapacity)
    {
        ArgumentNullException.ThrowIfNull(stream);
        string text;
        try
        {
            var buffered = new BufferedStream(stream);
            Span<byte> magic = stackalloc byte[2];
            bool gzip = false;
            if (stream.CanSeek)
            {
                long pos = stream.Position;
                gzip = stream.Read(magic) == 2 && magic[0] == 0x1F && magic[1] == 0x8B;
                stream.Position = pos;
                using var reader = new StreamReader(gzip ? new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true) : stream,
                    new UTF8Encoding(false, true), false, 1 << 16, leaveOpen: true);
                text = reader.ReadToEnd();
            }
            else
            {
                using var ms = new MemoryStream();
                stream.CopyTo(ms);
                ms.Position = 0;
                return FromOpenAI(ms, sourceName, cacheCapacity);
            }
        }
        catch (Exception e) when (e is InvalidDataException or DecoderFallbackException)
        {
            throw new ClipGenException($"{sourceName}: not a readable CLIP BPE merges file ({e.Message})", e);
        }

        // merges = file.split('\n')[1 : 49152-256-2+1]
        var lines = text.Split('\n');
        var merges = new List<(string, string)>(OpenAIMergeCount);
        for (int i = 1; i < lines.Length && i <= OpenAIMergeCount; i++)
            merges.Add(ParseMerge(lines[i], sourceName, i + 1));
        if (merges.Count == 0) throw new ClipGenException($"{sourceName}: no merges found (expected OpenAI's bpe_simple_vocab_16e6.txt.gz)");

        // vocab = bytes_to_unicode values, the same with '</w>', one entry per merge, then the two special tokens.
        var vocab = new List<string>(512 + merges.Count + 2);
        for (int k = 0; k < 256; k++) vocab.Add(ByteLevel.SymbolAt(k).ToString());
        for (int k = 0; k < 256; k++) vocab.Add(ByteLevel.SymbolAt(k) + "</w>");
        foreach (var (a, b) in merges) vocab.Add(a + b);
        vocab.Add(StartToken);
        vocab.Add(EndToken);
        var encoder = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        for (int id = 0; id < vocab.Count; id++) encoder[vocab[id]] = id; // last one wins, as dict(zip(vocab, range(...)))
        return new ClipTokenizer(encoder, merges, sourceName, cacheCapacity);
    }

    /// <summary>Loads Hugging Face's <c>vocab.json</c> and <c>merges.txt</c> (the <c>#version</c> header line is skipped).</summary>
    public static ClipTokenizer FromHuggingFace(string vocabJsonPath, string mergesPath, int cacheCapacity = DefaultCacheCapacity)
    {
        ArgumentNullException.ThrowIfNull(vocabJsonPath);
        ArgumentNullException.ThrowIfNull(mergesPath);
        if (!File.Exists(vocabJsonPath)) throw new ClipGenException($"vocabulary file not found: {vocabJsonPath}");
        if (!File.Exists(mergesPath)) throw new ClipGenException($"merges file not found: {mergesPath} (Hugging Face's vocab.json needs the merges.txt beside it)");
        Dictionary<string, int> encoder;
        try
        {
            using var f = File.OpenRead(vocabJsonPath);
            encoder = JsonSerializer.Deserialize<Dictionary<string, int>>(f)
                ?? throw new ClipGenException($"{vocabJsonPath}: expected a JSON object of token → id");
        }
        catch (JsonException e)
        {
            throw new ClipGenException($"{vocabJsonPath}: not a vocabulary JSON object of token → id ({e.Message})", e);
        }
        var merges = new List<(string, string)>(OpenAIMergeCount);
        int lineNo = 0;
        foreach (var line in File.ReadLines(mergesPath))
        {
            lineNo++;
            if (lineNo == 1 && line.StartsWith("#version", StringComparison.Ordinal)) continue;
            if (line.Length == 0) continue;
            merges.Add(ParseMerge(line, mergesPath, lineNo));
        }
        return new ClipTokenizer(encoder, merges, vocabJsonPath, cacheCapacity);
    }

    static (string, string) ParseMerge(string line, string source, int lineNo)
    {
        var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length != 2) throw new ClipGenException($"{source}:{lineNo}: a merge line needs two symbols separated by a space, not '{TokenBatching.Shorten(line)}'");
        return (parts[0], parts[1]);
    }

    // ---------------------------------------------------------------- encoding

    /// <inheritdoc/>
    public override int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new IntBuilder(stackalloc int[128]);
        try
        {
            ids.Add(StartTokenId);
            EncodeBody(text, ref ids);
            ids.Add(EndId);
            return ids.ToArray();
        }
        finally { ids.Dispose(); }
    }

    /// <summary>The tokens (vocabulary strings) of a text, with the start and end tokens; for inspection.</summary>
    public string[] EncodeToTokens(string text) => Array.ConvertAll(Encode(text), id => _idToToken[id]!);

    void EncodeBody(string text, ref IntBuilder ids)
    {
        if (ClipTextCleaner.IsFastAscii(text))
        {
            char[]? rented = null;
            Span<char> buf = text.Length <= 512 ? stackalloc char[512] : (rented = ArrayPool<char>.Shared.Rent(text.Length));
            try
            {
                int n = ClipTextCleaner.CleanAscii(text, buf);
                EncodeCleaned(buf[..n], ref ids);
            }
            finally { if (rented is not null) ArrayPool<char>.Shared.Return(rented); }
        }
        else EncodeCleaned(ClipTextCleaner.Clean(text), ref ids);
    }

    void EncodeCleaned(scoped ReadOnlySpan<char> cleaned, ref IntBuilder ids)
    {
        var pre = new ClipPreTokenizer(cleaned);
        WordCache? cache = null;
        while (pre.Next(out int start, out int length, out var kind))
        {
            if (kind == PieceKind.StartOfText) { ids.Add(StartTokenId); continue; }
            if (kind == PieceKind.EndOfText) { ids.Add(EndId); continue; }
            var piece = cleaned.Slice(start, length);
            if (_cacheCapacity == 0) { AppendBpe(piece, ref ids); continue; }
            cache ??= _cache.Value!;
            int hash = WordCache.Hash(piece);
            if (cache.TryGet(piece, hash, out var word)) { ids.AddRange(word); continue; }
            int before = ids.Count;
            AppendBpe(piece, ref ids);
            cache.Add(piece, hash, ids.WrittenFrom(before));
        }
    }

    /// <summary>BPE of one piece of cleaned text (for tests).</summary>
    internal int[] Bpe(ReadOnlySpan<char> piece)
    {
        var ids = new IntBuilder(stackalloc int[128]);
        try
        {
            AppendBpe(piece, ref ids);
            return ids.ToArray();
        }
        finally { ids.Dispose(); }
    }

    /// <summary>
    /// Appends the BPE of one piece of cleaned text: UTF-8 bytes as byte-level symbols, '&lt;/w&gt;' on the last, then merges.
    /// </summary>
    void AppendBpe(scoped ReadOnlySpan<char> piece, ref IntBuilder ids)
    {
        int maxBytes = Encoding.UTF8.GetMaxByteCount(piece.Length);
        byte[]? rentedBytes = null;
        Span<byte> bytes = maxBytes <= 256 ? stackalloc byte[256] : (rentedBytes = ArrayPool<byte>.Shared.Rent(maxBytes));
        try
        {
            int n = Encoding.UTF8.GetBytes(piece, bytes);
            if (n == 0) return;
            if (n == 1) { ids.Add(_byteEndId[bytes[0]]); return; }
            if (n <= LongWord)
            {
                // OpenAI's loop; the initial ranks from the dense byte-pair table
                Span<int> syms = stackalloc int[LongWord], rank = stackalloc int[LongWord], src = stackalloc int[LongWord];
                for (int i = 0; i < n - 1; i++)
                {
                    syms[i] = _byteId[bytes[i]];
                    rank[i] = _bytePairRank[(bytes[i] << 9) | bytes[i + 1]];
                }
                syms[n - 1] = _byteEndId[bytes[n - 1]];
                rank[n - 2] = _bytePairRank[(bytes[n - 2] << 9) | 256 | bytes[n - 1]];
                ids.AddRange(syms[..MergePasses(syms[..n], rank, src)]);
                return;
            }
            var rentedSyms = ArrayPool<int>.Shared.Rent(n);
            try
            {
                var sym = rentedSyms.AsSpan(0, n);
                for (int i = 0; i < n - 1; i++) sym[i] = _byteId[bytes[i]];
                sym[n - 1] = _byteEndId[bytes[n - 1]];
                int len = _ranksIncrease ? MergeWithHeap(sym) : MergeByPasses(sym);
                ids.AddRange(sym[..len]);
            }
            finally { ArrayPool<int>.Shared.Return(rentedSyms); }
        }
        finally { if (rentedBytes is not null) ArrayPool<byte>.Shared.Return(rentedBytes); }
    }

    /// <summary>The byte-level symbols of a piece before any merge (for tests).</summary>
    internal int[] InitialSymbols(string piece)
    {
        var bytes = Encoding.UTF8.GetBytes(piece);
        var sym = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) sym[i] = i == bytes.Length - 1 ? _byteEndId[bytes[i]] : _byteId[bytes[i]];
        return sym;
    }

    int Rank(int a, int b) => _ranks.Rank(a, b);

    /// <summary>
    /// OpenAI's loop, exactly: take the adjacent pair of lowest rank, merge all its occurrences left to right, repeat.
    /// Pair ranks are kept in an array and only recomputed next to a merge. Returns the new length of <paramref name="sym"/>.
    /// </summary>
    internal int MergeByPasses(Span<int> sym)
    {
        int n = sym.Length;
        if (n < 2) return n;
        int[]? rented = null;
        Span<int> scratch = n <= 128 ? stackalloc int[256] : (rented = ArrayPool<int>.Shared.Rent(2 * n));
        try
        {
            var rank = scratch[..(n - 1)];
            for (int i = 0; i < n - 1; i++) rank[i] = Rank(sym[i], sym[i + 1]);
            return MergePasses(sym, rank, scratch.Slice(n, n));
        }
        finally { if (rented is not null) ArrayPool<int>.Shared.Return(rented); }
    }

    /// <summary>
    /// <see cref="MergeByPasses"/> given the ranks of the initial pairs (<paramref name="rank"/>[i] for sym[i], sym[i + 1])
    /// and room for <paramref name="src"/>: for each output symbol of a pass, its source index, or -1 if it was just merged.
    /// </summary>
    int MergePasses(Span<int> sym, Span<int> rank, Span<int> src)
    {
        int n = sym.Length;
        while (n > 1)
        {
            int best = int.MaxValue;
            foreach (int r in rank[..(n - 1)]) if (r < best) best = r;
            if (best == int.MaxValue) break;
            int merged = _mergeResult[best];
            int w = 0;
            for (int i = 0; i < n; w++)
            {
                if (i < n - 1 && rank[i] == best) { sym[w] = merged; src[w] = -1; i += 2; }
                else { sym[w] = sym[i]; src[w] = i; i++; }
            }
            // rank[i] == best identifies the pair (a rank names one pair); a pair overlapping a merge to its left was
            // skipped by i += 2, as in Python. In-place update: reads at src[k] >= k, never overwritten yet.
            for (int k = 0; k < w - 1; k++)
                rank[k] = src[k] >= 0 && src[k + 1] >= 0 ? rank[src[k]] : Rank(sym[k], sym[k + 1]);
            n = w;
        }
        return n;
    }

    /// <summary>
    /// The same result in O(n log n) for long words: a priority queue of (rank, position) over a linked list. Equal to
    /// <see cref="MergeByPasses"/> when every merge's parts were made by earlier merges (checked at load), because then a
    /// merge only creates pairs of higher rank, so all occurrences of one rank are merged left to right before the next.
    /// </summary>
    internal int MergeWithHeap(Span<int> sym)
    {
        int n = sym.Length;
        if (n < 2) return n;
        var next = new int[n];
        var prev = new int[n];
        var alive = new bool[n];
        var queue = new PriorityQueue<int, long>(n);
        for (int i = 0; i < n; i++) { next[i] = i + 1 < n ? i + 1 : -1; prev[i] = i - 1; alive[i] = true; }
        for (int i = 0; i < n - 1; i++)
        {
            int r = Rank(sym[i], sym[i + 1]);
            if (r != int.MaxValue) queue.Enqueue(i, ((long)r << 32) | (uint)i);
        }
        while (queue.TryDequeue(out int p, out long pri))
        {
            int r = (int)(pri >> 32);
            if (!alive[p]) continue;
            int q = next[p];
            if (q < 0 || Rank(sym[p], sym[q]) != r) continue; // stale entry
            sym[p] = _mergeResult[r];
            alive[q] = false;
            next[p] = next[q];
            if (next[q] >= 0) prev[next[q]] = p;
            if (prev[p] >= 0)
            {
                int rl = Rank(sym[prev[p]], sym[p]);
                if (rl != int.MaxValue) queue.Enqueue(prev[p], ((long)rl << 32) | (uint)prev[p]);
            }
            if (next[p] >= 0)
            {
                int rr = Rank(sym[p], sym[next[p]]);
                if (rr != int.MaxValue) queue.Enqueue(p, ((long)rr << 32) | (uint)p);
            }
        }
        int w = 0;
        for (int i = 0; i >= 0; i = next[i]) sym[w++] = sym[i];
        return w;
    }

    /// <summary>Whether long words use the heap merge (true for OpenAI's file).</summary>
    internal bool UsesHeapForLongWords => _ranksIncrease;


    // ---------------------------------------------------------------- decoding

    /// <summary>
    /// OpenAI's <c>SimpleTokenizer.decode</c>: token strings joined, byte-level symbols back to bytes, UTF-8 decoded with
    /// U+FFFD for invalid sequences, then every '&lt;/w&gt;' replaced by a space.
    /// </summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var bytes = new ArrayBufferWriter<byte>(256);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_idToToken.Length || _idToToken[id] is null)
                throw new ClipGenException($"token id {id} is not in the vocabulary (0..{_idToToken.Length - 1})");
            if (skipSpecialTokens && (id == StartTokenId || id == EndId)) continue;
            bytes.Write(_idToBytes[id]);
        }
        return Encoding.UTF8.GetString(bytes.WrittenSpan).Replace("</w>", " ", StringComparison.Ordinal);
    }

    /// <summary>The vocabulary string of an id ("cat&lt;/w&gt;", "&lt;|endoftext|&gt;").</summary>
    public string IdToToken(int id) =>
        (uint)id < (uint)_idToToken.Length && _idToToken[id] is { } t ? t : throw new ClipGenException($"token id {id} is not in the vocabulary");
}

/// <summary>GPT-2's <c>bytes_to_unicode</c>: every byte as a printable character.</summary>
static class ByteLevel
{
    static readonly char[] ByteToChar = new char[256];
    static readonly byte[] OrderToByte = new byte[256]; // the dict's order: printable bytes first, then the rest
    static readonly Dictionary<char, byte> CharToByte = new();

    static ByteLevel()
    {
        var bs = new List<int>();
        for (int b = '!'; b <= '~'; b++) bs.Add(b);
        for (int b = 0xA1; b <= 0xAC; b++) bs.Add(b);
        for (int b = 0xAE; b <= 0xFF; b++) bs.Add(b);
        var cs = new List<int>(bs);
        int extra = 0;
        for (int b = 0; b < 256; b++)
            if (!bs.Contains(b)) { bs.Add(b); cs.Add(256 + extra++); }
        for (int k = 0; k < 256; k++)
        {
            ByteToChar[bs[k]] = (char)cs[k];
            OrderToByte[k] = (byte)bs[k];
            CharToByte[(char)cs[k]] = (byte)bs[k];
        }
    }

    /// <summary>The character standing for byte <paramref name="b"/>.</summary>
    public static char Symbol(int b) => ByteToChar[b];

    /// <summary>The <paramref name="k"/>-th character in <c>bytes_to_unicode()</c>'s order (its vocabulary id).</summary>
    public static char SymbolAt(int k) => ByteToChar[OrderToByte[k]];

    /// <summary>The bytes of a vocabulary string; a character outside the byte alphabet is taken as its own UTF-8.</summary>
    public static byte[] ToBytes(string token)
    {
        var buf = new List<byte>(token.Length);
        Span<byte> u = stackalloc byte[4];
        foreach (var r in token.EnumerateRunes())
        {
            if (r.IsBmp && CharToByte.TryGetValue((char)r.Value, out byte b)) { buf.Add(b); continue; }
            int k = r.EncodeToUtf8(u);
            for (int i = 0; i < k; i++) buf.Add(u[i]);
        }
        return [.. buf];
    }
}

/// <summary>A growable int list over a caller's stack buffer, renting from the pool when it grows.</summary>
ref struct IntBuilder
{
    Span<int> _span;
    int[]? _rented;
    int _count;

    public IntBuilder(Span<int> initial) { _span = initial; _rented = null; _count = 0; }

    public readonly int Count => _count;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(int v)
    {
        if (_count == _span.Length) Grow(1);
        _span[_count++] = v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AddRange(scoped ReadOnlySpan<int> v)
    {
        if (_count + v.Length > _span.Length) Grow(v.Length);
        v.CopyTo(_span[_count..]);
        _count += v.Length;
    }

    void Grow(int extra)
    {
        var bigger = ArrayPool<int>.Shared.Rent(Math.Max(_span.Length * 2, _count + extra));
        _span[.._count].CopyTo(bigger);
        if (_rented is not null) ArrayPool<int>.Shared.Return(_rented);
        _rented = bigger;
        _span = bigger;
    }

    public readonly int[] ToArray() => _span[.._count].ToArray();

    /// <summary>The ids added since the count was <paramref name="start"/>; valid until the next add.</summary>
    public readonly ReadOnlySpan<int> WrittenFrom(int start) => _span[start.._count];

    public void Dispose()
    {
        if (_rented is not null) ArrayPool<int>.Shared.Return(_rented);
        _rented = null;
    }
}
