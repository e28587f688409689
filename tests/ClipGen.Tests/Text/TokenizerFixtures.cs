using System.Text.Json;
using ClipGen.Text;

namespace ClipGen.Tests.Text;

/// <summary>The shared reference files and tokenizers loaded once for all tokenizer tests.</summary>
static class TokenizerFixtures
{
    public static string GzPath => Fixtures.Path_("vocab", "bpe_simple_vocab_16e6.txt.gz");
    public static string HfVocabPath => Fixtures.Path_("vocab", "hf", "vocab.json");
    public static string HfMergesPath => Fixtures.Path_("vocab", "hf", "merges.txt");
    public static string CasesPath => Fixtures.Path_("tokenizer", "cases.json");

    static readonly Lazy<ClipTokenizer> GzLazy = new(() => ClipTokenizer.FromOpenAI(GzPath));
    static readonly Lazy<ClipTokenizer> HfLazy = new(() => ClipTokenizer.FromHuggingFace(HfVocabPath, HfMergesPath));
    static readonly Lazy<IReadOnlyList<RefCase>> CasesLazy = new(() => LoadCases(CasesPath));
    static readonly Lazy<IReadOnlyList<RefCase>> PythonCasesLazy = new(() =>
        LoadCases(Path.Combine(Fixtures.RepoRoot, "tests", "ClipGen.Tests", "Text", "python_reference.json")));

    public static ClipTokenizer Gz => GzLazy.Value;
    public static ClipTokenizer Hf => HfLazy.Value;
    public static IReadOnlyList<RefCase> Cases => CasesLazy.Value;
    public static IReadOnlyList<RefCase> PythonCases => PythonCasesLazy.Value;

    static List<RefCase> LoadCases(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var list = new List<RefCase>();
        int k = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            string? Str(string name) => c.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
            int[]? Ints(string name) => c.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array
                ? v.EnumerateArray().Select(e => e.GetInt32()).ToArray() : null;
            list.Add(new RefCase(
                Str("id") ?? $"#{k}",
                Str("text")!,
                Ints("ids")!,
                c.TryGetProperty("tokens", out var t) ? t.EnumerateArray().Select(e => e.GetString()!).ToArray() : null,
                Str("cleaned"),
                Str("decoded"),
                c.TryGetProperty("ftfy_dependent", out var f) && f.GetBoolean(),
                c.TryGetProperty("truncated", out var tr) && tr.GetBoolean(),
                c.TryGetProperty("n_tokens_untruncated", out var nt) ? nt.GetInt32() : -1,
                c.TryGetProperty("pieces", out var p) ? p.EnumerateArray().Select(e => e.GetString()!).ToArray() : null));
            k++;
        }
        return list;
    }
}

/// <summary>One reference case: OpenAI's ids (unpadded, truncated to 77 like clip.tokenize) and what it saw.</summary>
sealed record RefCase(string Id, string Text, int[] Ids, string[]? Tokens, string? Cleaned, string? Decoded,
    bool FtfyDependent, bool Truncated, int UntruncatedCount, string[]? Pieces)
{
    public override string ToString() => Id;
}
