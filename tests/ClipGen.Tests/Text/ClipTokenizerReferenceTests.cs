using ClipGen.Text;
using Xunit;
using Xunit.Abstractions;

namespace ClipGen.Tests.Text;

/// <summary>Parity with OpenAI's tokenizer on the shared reference cases (cases.json, made with the real ftfy).</summary>
public sealed class ClipTokenizerReferenceTests(ITestOutputHelper output)
{
    public static TheoryData<string> CaseIds()
    {
        var d = new TheoryData<string>();
        foreach (var c in TokenizerFixtures.Cases) d.Add(c.Id);
        return d;
    }

    static RefCase Case(string id) => TokenizerFixtures.Cases.Single(c => c.Id == id);

    /// <summary>What clip.tokenize(truncate=True) returns, unpadded: our ids cut to 77 with the end token last.</summary>
    static int[] ClipTokenize(ClipTokenizer tok, string text) => TokenBatching.Truncate(tok.Encode(text), 77, tok.EndId);

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void Ids_match_OpenAI(string id)
    {
        var c = Case(id);
        Assert.Equal(c.Ids, ClipTokenize(TokenizerFixtures.Gz, c.Text));
        Assert.Equal(c.UntruncatedCount, TokenizerFixtures.Gz.Encode(c.Text).Length);
    }

    [Theory]
    [MemberData(nameof(CaseIds))]
    public void Tokens_cleaned_and_decoded_match_OpenAI(string id)
    {
        var c = Case(id);
        var tok = TokenizerFixtures.Gz;
        if (c.Cleaned is not null) Assert.Equal(c.Cleaned, ClipTextCleaner.Clean(c.Text));
        var ids = ClipTokenize(tok, c.Text);
        if (c.Tokens is not null) Assert.Equal(c.Tokens, ids.Select(tok.IdToToken));
        if (c.Decoded is not null) Assert.Equal(c.Decoded, tok.Decode(ids[1..^1]));
    }

    [Fact]
    public void The_ftfy_dependent_cases_are_all_there()
    {
        // These need ftfy's rules (entities, C1 controls, width, quotes, controls, NFC, and mojibake repair for
        // ftfy_mojibake); the two theories above check them like every other case.
        var dependent = TokenizerFixtures.Cases.Where(c => c.FtfyDependent).Select(c => c.Id).ToList();
        output.WriteLine($"ftfy-dependent cases: {string.Join(", ", dependent)}");
        Assert.Equal(7, dependent.Count);
        Assert.Contains("ftfy_mojibake", dependent);
    }

    [Fact]
    public void Both_vocabulary_formats_give_identical_ids()
    {
        Assert.Equal(TokenizerFixtures.Gz.VocabSize, TokenizerFixtures.Hf.VocabSize);
        Assert.Equal(49408, TokenizerFixtures.Gz.VocabSize);
        Assert.Equal(ClipTokenizer.OpenAIMergeCount, TokenizerFixtures.Gz.MergeCount);
        Assert.Equal(TokenizerFixtures.Gz.MergeCount, TokenizerFixtures.Hf.MergeCount);
        foreach (var c in TokenizerFixtures.Cases.Concat(TokenizerFixtures.PythonCases))
            Assert.Equal(TokenizerFixtures.Gz.Encode(c.Text), TokenizerFixtures.Hf.Encode(c.Text));
        for (int id = 0; id < TokenizerFixtures.Gz.VocabSize; id++)
            Assert.Equal(TokenizerFixtures.Gz.IdToToken(id), TokenizerFixtures.Hf.IdToToken(id));
    }

    [Fact]
    public void Ids_match_OpenAIs_code_on_generated_hostile_strings()
    {
        // python_reference.json: OpenAI's simple_tokenizer.py run (ftfy aside) on 406 strings mixing contractions,
        // special tokens, ſ, İ, Σ, U+0345, astral letters and digits, emoji, entities and every kind of whitespace.
        int n = 0;
        foreach (var c in TokenizerFixtures.PythonCases)
        {
            Assert.True(c.Cleaned == ClipTextCleaner.Clean(c.Text), $"cleaned differs for {Escape(c.Text)}");
            Assert.True(c.Pieces!.SequenceEqual(ClipPreTokenizer.Split(c.Cleaned!)), $"pieces differ for {Escape(c.Text)}");
            Assert.True(c.Ids.SequenceEqual(TokenizerFixtures.Gz.Encode(c.Text)), $"ids differ for {Escape(c.Text)}");
            n++;
        }
        output.WriteLine($"{n} generated strings match OpenAI's code");
    }

    [Fact]
    public void Special_tokens_typed_as_text_become_special_ids_only_when_spelt_exactly()
    {
        var tok = TokenizerFixtures.Gz;
        Assert.Equal([49406, 49406, 49407, 49407], tok.Encode("<|startoftext|><|endoftext|>"));
        Assert.Equal([49406, 49406, 49407, 49407], tok.Encode("<|STARTOFTEXT|><|EndOfText|>")); // lower-cased first
        var longS = tok.Encode("<|\u017Ftartoftext|>");
        Assert.DoesNotContain(49406, longS[1..]);
    }

    [Fact]
    public void Heap_merge_equals_OpenAIs_loop_on_long_words()
    {
        var tok = TokenizerFixtures.Gz;
        Assert.True(tok.UsesHeapForLongWords);
        var rng = new Random(7);
        const string alphabet = "abcdefghijklmnopqrstuvwxyzéß中 ";
        for (int t = 0; t < 300; t++)
        {
            var chars = new char[rng.Next(1, 400)];
            for (int i = 0; i < chars.Length; i++) chars[i] = alphabet[rng.Next(alphabet.Length - (t % 2 == 0 ? 3 : 0))];
            var word = new string(chars);
            var symA = tok.InitialSymbols(word);
            var symB = (int[])symA.Clone();
            int na = tok.MergeByPasses(symA), nb = tok.MergeWithHeap(symB);
            Assert.Equal(symA[..na], symB[..nb]);
        }
    }

    static string Escape(string s) => string.Concat(s.Select(ch => ch is >= ' ' and < '\u007f' ? ch.ToString() : $"\\u{(int)ch:X4}"));
}
