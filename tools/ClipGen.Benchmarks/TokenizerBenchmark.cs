using System.Diagnostics;
using ClipGen.Text;

namespace ClipGen.Benchmarks;

/// <summary>
/// <c>tokenizer [--vocab FILE] [--captions N]</c>: CLIP BPE captions per second, single-threaded with warm cache (seen
/// words), single-threaded on words never seen before (cache misses), and EncodeBatch over all cores.
/// </summary>
public static class TokenizerBenchmark
{
    static readonly string[] Words =
    [
        "a", "photo", "of", "the", "cat", "dog", "sitting", "on", "beach", "at", "sunset", "man", "woman", "riding", "bike",
        "red", "car", "parked", "next", "to", "tree", "group", "people", "standing", "street", "city", "night", "plate",
        "food", "with", "table", "white", "black", "small", "large", "two", "three", "in", "field", "grass", "playing",
        "ball", "child", "holding", "umbrella", "rain", "train", "station", "building", "sky", "clouds", "water", "boat",
    ];

    public static int Run(string[] args)
    {
        string? vocab = null;
        int n = 200_000;
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--vocab" && i + 1 < args.Length) vocab = args[++i];
            else if (args[i] == "--captions" && i + 1 < args.Length) n = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture);
            else { Console.Error.WriteLine($"unknown option {args[i]}; usage: tokenizer [--vocab FILE] [--captions N]"); return 2; }
        }
        vocab ??= Environment.GetEnvironmentVariable(TextTokenizers.VocabEnvironmentVariable) ?? FindFixtureVocab();
        var load = Stopwatch.StartNew();
        var tok = ClipTokenizer.FromFile(vocab);
        Console.WriteLine($"vocabulary {vocab}: loaded in {load.Elapsed.TotalMilliseconds:F0} ms");
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}, .NET {Environment.Version}");

        var rng = new Random(42);
        var seen = Enumerable.Range(0, 10_000).Select(_ => Caption(rng, () => Words[rng.Next(Words.Length)])).ToArray();
        // Unseen: random pseudo-words, fresh for every caption (about 10 cache misses per caption).
        var unseen = Enumerable.Range(0, n).Select(_ => Caption(rng, () => RandomWord(rng))).ToArray();
        double avgChars = seen.Average(s => s.Length), avgTokens = seen.Take(1000).Average(s => tok.Encode(s).Length);
        Console.WriteLine($"seen-word captions: {avgChars:F0} chars, {avgTokens:F1} tokens on average");

        foreach (var s in seen) tok.Encode(s); // warm the cache
        double tSeen = BenchUtil.MedianSeconds(() => { for (int i = 0; i < n; i++) tok.Encode(seen[i % seen.Length]); }, warmup: 1, runs: 5);
        Report("single thread, seen words (cache hits)", n, tSeen, 200_000);

        var fresh = ClipTokenizer.FromFile(vocab);
        var sw = Stopwatch.StartNew();
        foreach (var s in unseen) fresh.Encode(s);
        Report("single thread, unseen words (cache misses)", unseen.Length, sw.Elapsed.TotalSeconds, 100_000);

        var noCache = ClipTokenizer.FromFile(vocab, cacheCapacity: 0);
        sw.Restart();
        for (int i = 0; i < n / 4; i++) noCache.Encode(unseen[i]);
        Report("single thread, unseen words, cache off", n / 4, sw.Elapsed.TotalSeconds, 100_000);
        double tNoCache = BenchUtil.MedianSeconds(() => { for (int i = 0; i < n / 4; i++) noCache.Encode(seen[i % seen.Length]); }, warmup: 1, runs: 3);
        Report("single thread, seen-word captions, cache off", n / 4, tNoCache, 100_000);

        var batch = Enumerable.Range(0, n).Select(i => seen[i % seen.Length]).ToArray();
        double tBatch = BenchUtil.MedianSeconds(() => tok.EncodeBatch(batch, 77), warmup: 1, runs: 5);
        Report($"EncodeBatch [N,77], Parallel over {Environment.ProcessorCount} cores, seen words", n, tBatch, null);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++) tok.Encode(seen[i]);
        Console.WriteLine($"allocated per Encode (seen words): {(GC.GetAllocatedBytesForCurrentThread() - before) / 10_000.0:F0} bytes (the result array)");
        return 0;
    }

    static void Report(string what, int count, double seconds, int? target)
    {
        double rate = count / seconds;
        var verdict = target is { } t ? (rate >= t ? $"  (target >= {t:N0}: met)" : $"  (target >= {t:N0}: NOT met)") : "";
        Console.WriteLine($"{what,-62} {rate,12:N0} captions/s{verdict}");
    }

    static string Caption(Random rng, Func<string> word)
    {
        int k = rng.Next(6, 14);
        var parts = new string[k];
        for (int i = 0; i < k; i++) parts[i] = word();
        var s = string.Join(' ', parts);
        return rng.Next(4) == 0 ? char.ToUpperInvariant(s[0]) + s[1..] + "." : s;
    }

    static string RandomWord(Random rng)
    {
        const string letters = "abcdefghijklmnopqrstuvwxyz";
        var c = new char[rng.Next(3, 10)];
        for (int i = 0; i < c.Length; i++) c[i] = letters[rng.Next(letters.Length)];
        return new string(c);
    }

    static string FindFixtureVocab()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ClipGen.sln")))
                return Path.Combine(dir.FullName, "..", "shared", "fixtures", "vocab", "bpe_simple_vocab_16e6.txt.gz");
        throw new InvalidOperationException("no vocabulary: pass --vocab FILE or set CLIPGEN_VOCAB");
    }
}
