using System.IO.Compression;
using System.Text;
using ClipGen.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace ClipGen.Tests.Text;

/// <summary>A caption of lower-case letter words (ASCII and multi-byte letters), with repeats, so that each word is one piece.</summary>
public sealed record LetterCaption(string[] Words)
{
    public override string ToString() => string.Join(' ', Words);
}

public static class LetterCaptionArbitrary
{
    // Letters that cleaning leaves alone in any order (already lower-case, NFC; no pair that ftfy's mojibake heuristic
    // flags, so no 'œ', which it flags before any non-ASCII letter): 1-, 2- and 3-byte UTF-8.
    const string Alphabet = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzéßçñøæłжщыαβγ中文字";

    static Gen<string> Word() =>
        Gen.OneOf(
            Gen.Choose(1, 12), Gen.Choose(1, 12), Gen.Choose(1, 12), Gen.Choose(13, 60), Gen.Choose(100, 300))
        .SelectMany(n => Gen.ArrayOf(Gen.Elements(Alphabet.ToCharArray()), n))
        .Select(c => new string(c));

    public static Arbitrary<LetterCaption> Captions() =>
        Arb.From(
            // A few distinct words, then a caption drawn from them with repeats (cache hits within a caption).
            Gen.NonEmptyListOf(Word()).SelectMany(pool =>
                Gen.Choose(1, 30).SelectMany(n => Gen.ArrayOf(Gen.Elements(pool.ToArray()), n)))
            .Select(ws => new LetterCaption(ws)));
}

/// <summary>
/// The tokenizer's fast paths (flat merge table, merge loop on ids, flat per-thread word cache with hits, misses and
/// clearing, heap merge for long words) against a literal, string-based port of OpenAI's <c>bpe()</c>.
/// </summary>
[Properties(Arbitrary = [typeof(LetterCaptionArbitrary)], MaxTest = 300)]
public sealed class BpeFastPathTests
{
    static readonly Lazy<ReferenceBpe> Reference = new(() => new ReferenceBpe(TokenizerFixtures.GzPath, TokenizerFixtures.Gz));
    static readonly Lazy<ClipTokenizer> TinyCache = new(() => ClipTokenizer.FromOpenAI(TokenizerFixtures.GzPath, cacheCapacity: 7));
    static readonly Lazy<ClipTokenizer> NoCache = new(() => ClipTokenizer.FromOpenAI(TokenizerFixtures.GzPath, cacheCapacity: 0));

    [Property]
    public bool Encode_equals_OpenAIs_string_BPE_with_and_without_the_cache(LetterCaption c)
    {
        var expected = c.Words.SelectMany(Reference.Value.Ids).ToArray();
        var text = c.ToString();
        foreach (var tok in new[] { TokenizerFixtures.Gz, TinyCache.Value, NoCache.Value })
        {
            var ids = tok.Encode(text);
            if (!ids.AsSpan(1, ids.Length - 2).SequenceEqual(expected)) return false;
            // again: now from the cache (where it held the words)
            ids = tok.Encode(text);
            if (!ids.AsSpan(1, ids.Length - 2).SequenceEqual(expected)) return false;
        }
        return true;
    }

    [Fact]
    public void Pair_table_keeps_the_last_rank_of_a_repeated_pair_and_misses_give_max()
    {
        var t = new PairRankTable(3);
        t.Set(1, 2, 0);
        t.Set(2, 1, 1);
        t.Set(1, 2, 2);
        t.Set(PairRankTable.MaxId - 1, 0, PairRankTable.MaxRank - 1);
        Assert.Equal(2, t.Rank(1, 2));
        Assert.Equal(1, t.Rank(2, 1));
        Assert.Equal(PairRankTable.MaxRank - 1, t.Rank(PairRankTable.MaxId - 1, 0));
        Assert.Equal(int.MaxValue, t.Rank(0, PairRankTable.MaxId - 1));
        Assert.Equal(int.MaxValue, t.Rank(2, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => t.Set(PairRankTable.MaxId, 0, 0));
    }

    [Fact]
    public void Word_cache_finds_what_it_holds_clears_when_full_and_skips_words_too_long()
    {
        var cache = new WordCache(3);
        string[] words = ["a", "ab", "abc", "abcd"];
        for (int i = 0; i < 3; i++) cache.Add(words[i], WordCache.Hash(words[i]), Enumerable.Range(i, i + 1).ToArray());
        for (int i = 0; i < 3; i++)
        {
            Assert.True(cache.TryGet(words[i], WordCache.Hash(words[i]), out var ids));
            Assert.Equal(Enumerable.Range(i, i + 1).ToArray(), ids.ToArray());
        }
        Assert.False(cache.TryGet("b", WordCache.Hash("b"), out _));
        Assert.False(cache.TryGet("abcd", WordCache.Hash("abcd"), out _));

        cache.Add(words[3], WordCache.Hash(words[3]), [7, 8]); // full: emptied first
        Assert.Equal(1, cache.Count);
        Assert.False(cache.TryGet("a", WordCache.Hash("a"), out _));
        Assert.True(cache.TryGet("abcd", WordCache.Hash("abcd"), out var last));
        Assert.Equal([7, 8], last.ToArray());

        var huge = new string('x', 200_000); // more than the arena may hold (16 ints per word of capacity, at least 65,536)
        cache.Add(huge, WordCache.Hash(huge), [1]);
        Assert.False(cache.TryGet(huge, WordCache.Hash(huge), out _));
        Assert.True(cache.TryGet("abcd", WordCache.Hash("abcd"), out _));
    }

    [Fact]
    public void Word_cache_grows_its_table_and_arena_and_keeps_every_word()
    {
        var cache = new WordCache(50_000);
        var rng = new Random(3);
        var words = Enumerable.Range(0, 5000).Select(i => $"{i}-{new string('q', rng.Next(0, 40))}").ToArray();
        for (int i = 0; i < words.Length; i++) cache.Add(words[i], WordCache.Hash(words[i]), Enumerable.Repeat(i, rng.Next(1, 30)).ToArray());
        Assert.Equal(words.Length, cache.Count);
        for (int i = 0; i < words.Length; i++)
        {
            Assert.True(cache.TryGet(words[i], WordCache.Hash(words[i]), out var ids));
            Assert.All(ids.ToArray(), id => Assert.Equal(i, id));
        }
    }
}

/// <summary>OpenAI's <c>SimpleTokenizer.bpe</c> on strings, as written in clip/simple_tokenizer.py.</summary>
sealed class ReferenceBpe
{
    readonly Dictionary<(string, string), int> _ranks = new();
    readonly Dictionary<string, int> _encoder = new(StringComparer.Ordinal);
    readonly string[] _byteEncoder = new string[256];
    readonly System.Collections.Concurrent.ConcurrentDictionary<string, int[]> _memo = new(StringComparer.Ordinal);

    public ReferenceBpe(string gzPath, ClipTokenizer vocabulary)
    {
        using (var reader = new StreamReader(new GZipStream(File.OpenRead(gzPath), CompressionMode.Decompress), Encoding.UTF8))
        {
            var lines = reader.ReadToEnd().Split('\n');
            for (int i = 1; i <= ClipTokenizer.OpenAIMergeCount; i++)
            {
                var parts = lines[i].Split(' ');
                _ranks[(parts[0], parts[1])] = i - 1;
            }
        }
        for (int id = 0; id < vocabulary.VocabSize; id++) _encoder[vocabulary.IdToToken(id)] = id;

        // bytes_to_unicode()
        var bs = new List<int>();
        for (int b = '!'; b <= '~'; b++) bs.Add(b);
        for (int b = 0xA1; b <= 0xAC; b++) bs.Add(b);
        for (int b = 0xAE; b <= 0xFF; b++) bs.Add(b);
        var cs = new List<int>(bs);
        int n = 0;
        for (int b = 0; b < 256; b++)
            if (!bs.Contains(b)) { bs.Add(b); cs.Add(256 + n++); }
        for (int k = 0; k < 256; k++) _byteEncoder[bs[k]] = ((char)cs[k]).ToString();
    }

    public int[] Ids(string piece) => _memo.GetOrAdd(piece, Compute);

    int[] Compute(string piece)
    {
        var token = string.Concat(Encoding.UTF8.GetBytes(piece).Select(b => _byteEncoder[b]));
        return Bpe(token).Split(' ').Select(t => _encoder[t]).ToArray();
    }

    string Bpe(string token)
    {
        var word = token[..^1].Select(c => c.ToString()).Append(token[^1] + "</w>").ToList();
        if (word.Count == 1) return token + "</w>";
        while (true)
        {
            var pairs = Enumerable.Range(0, word.Count - 1).Select(i => (word[i], word[i + 1])).ToList();
            var bigram = pairs.MinBy(p => _ranks.TryGetValue(p, out int r) ? r : int.MaxValue);
            if (!_ranks.ContainsKey(bigram)) break;
            var (first, second) = bigram;
            var newWord = new List<string>();
            int i = 0;
            while (i < word.Count)
            {
                int j = word.IndexOf(first, i);
                if (j < 0) { newWord.AddRange(word.Skip(i)); break; }
                newWord.AddRange(word.Skip(i).Take(j - i));
                i = j;
                if (word[i] == first && i < word.Count - 1 && word[i + 1] == second) { newWord.Add(first + second); i += 2; }
                else { newWord.Add(word[i]); i++; }
            }
            word = newWord;
            if (word.Count == 1) break;
        }
        return string.Join(' ', word);
    }
}
