using System.Text.Json;
using ClipGen.Text;
using Xunit;

namespace ClipGen.Tests.Text;

/// <summary>
/// The "sentencepiece" kind against Google's sentencepiece: the shared fixture (open_clip's canonical cleaning with the real
/// ftfy + sentencepiece 0.1.97, padded to 64) and the reference files made by Text/Data/make_sentencepiece_refs.py.
/// </summary>
public sealed class SentencePieceTokenizerTests
{
    const int SigLipContext = 64;

    static string FixtureDir => Fixtures.Path_("tokenizer", "sentencepiece");
    static string UnigramPath => Path.Combine(FixtureDir, "spm.model");
    static string DataDir => Path.Combine(Fixtures.RepoRoot, "tests", "ClipGen.Tests", "Text", "Data");
    static string BpePath => Path.Combine(DataDir, "gemma_like_bpe.model");

    /// <summary>SigLIP's settings: canonical cleaning, end 1, pad 1.</summary>
    internal static readonly Lazy<SentencePieceTextTokenizer> SigLip =
        new(() => SentencePieceTextTokenizer.FromFile(UnigramPath, TextCleaning.Canonicalize, endId: 1, padId: 1));
    /// <summary>SigLIP 2's (Gemma) settings: canonical cleaning, end 1, pad 0.</summary>
    internal static readonly Lazy<SentencePieceTextTokenizer> Gemma =
        new(() => SentencePieceTextTokenizer.FromFile(BpePath, TextCleaning.Canonicalize, endId: 1, padId: 0));

    public sealed record Case(string Text, string? Canonical, int[] Ids)
    {
        public override string ToString() => Text.Length <= 40 ? Text : Text[..40] + "...";
    }

    static List<Case> Load(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
            c.GetProperty("text").GetString()!,
            c.TryGetProperty("canonical", out var k) ? k.GetString() : null,
            c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray())).ToList();
    }

    static readonly Lazy<List<Case>> FixtureCases = new(() => Load(Path.Combine(FixtureDir, "cases.json")));

    public static TheoryData<int> FixtureIndices() => [.. Enumerable.Range(0, 20)];

    [Theory]
    [MemberData(nameof(FixtureIndices))]
    public void Fixture_case_matches_open_clip_cleaning_and_google_ids(int index)
    {
        var c = FixtureCases.Value[index];
        Assert.Equal(c.Canonical, OpenClipCleaner.Clean(c.Text, TextCleaning.Canonicalize));
        var row = SigLip.Value.EncodeBatch([c.Text], SigLipContext);
        Assert.Equal(c.Ids.Select(i => (long)i), row);
    }

    [Fact]
    public void Fixture_has_twenty_cases_and_the_model_needs_the_start_piece_workaround()
    {
        Assert.Equal(20, FixtureCases.Value.Count);
        Assert.True(SigLip.Value.AddedStartPiece);
        Assert.Equal(1000, SigLip.Value.VocabSize);
        Assert.False(SigLip.Value.IsBpe);
        Assert.Null(SigLip.Value.StartId);
    }

    [Fact]
    public void Microsoft_ML_Tokenizers_alone_throws_on_a_unigram_model_without_a_start_piece()
    {
        // The reason for SentencePieceModelFile.WithControlStartPiece; if a later Microsoft.ML.Tokenizers loads the file,
        // this test fails and the workaround can go.
        using var f = File.OpenRead(UnigramPath);
        Assert.Throws<IndexOutOfRangeException>(() => Microsoft.ML.Tokenizers.SentencePieceTokenizer.Create(f, false, false));
    }

    static readonly Lazy<List<Case>> UnigramCases = new(() => Load(Path.Combine(DataDir, "unigram_reference.json")));
    static readonly Lazy<List<Case>> BpeCases = new(() => Load(Path.Combine(DataDir, "gemma_like_bpe_reference.json")));

    [Fact]
    public void Unigram_ids_match_google_sentencepiece_on_random_strings()
    {
        var cases = UnigramCases.Value;
        Assert.True(cases.Count >= 300);
        var bad = cases.Where(c => !SigLip.Value.EncodeCleaned(c.Text).SequenceEqual([.. c.Ids, 1])).ToList();
        Assert.True(bad.Count == 0, $"{bad.Count} of {cases.Count} differ, first: {Describe(SigLip.Value, bad)}");
    }

    [Fact]
    public void Gemma_like_bpe_ids_match_google_sentencepiece_on_random_strings()
    {
        var cases = BpeCases.Value;
        Assert.True(cases.Count >= 300);
        Assert.True(Gemma.Value.IsBpe);
        Assert.False(Gemma.Value.AddedStartPiece);
        var bad = cases.Where(c => !Gemma.Value.EncodeCleaned(c.Text).SequenceEqual([.. c.Ids, 1])).ToList();
        Assert.True(bad.Count == 0, $"{bad.Count} of {cases.Count} differ, first: {Describe(Gemma.Value, bad)}");
    }

    static string Describe(SentencePieceTextTokenizer tok, List<Case> bad)
    {
        if (bad.Count == 0) return "";
        var c = bad[0];
        return $"{JsonSerializer.Serialize(c.Text)}: expected [{string.Join(',', c.Ids)}, 1], got [{string.Join(',', tok.EncodeCleaned(c.Text))}]";
    }

    [Fact]
    public void Gemma_layout_pads_with_zero_and_ends_with_one()
    {
        var rows = Gemma.Value.EncodeBatch(["a photo of a cat", ""], 16);
        var first = Gemma.Value.EncodeCleaned("a photo of a cat");
        Assert.Equal(first.Select(i => (long)i), rows[..first.Length]);
        Assert.All(rows[first.Length..16], v => Assert.Equal(0L, v));
        Assert.Equal([1L, .. Enumerable.Repeat(0L, 15)], rows[16..]);
    }

    [Fact]
    public void Truncation_keeps_the_end_piece_last_and_reports_the_row()
    {
        var tok = SigLip.Value;
        var text = string.Join(' ', Enumerable.Repeat("software license", 40));
        var full = tok.Encode(text);
        Assert.True(full.Length > SigLipContext);
        var row = tok.EncodeBatch([text, "a cat"], SigLipContext, TruncationMode.Truncate, out var cut);
        Assert.Equal([0], cut);
        Assert.Equal(full[..(SigLipContext - 1)].Select(i => (long)i), row[..(SigLipContext - 1)]);
        Assert.Equal(1L, row[SigLipContext - 1]);
        var e = Assert.Throws<ClipGenException>(() => tok.EncodeBatch([text], SigLipContext, TruncationMode.Error));
        Assert.Contains($"{full.Length} tokens", e.Message);
    }

    [Fact]
    public void Decode_inverts_encode_for_text_the_model_covers()
    {
        var tok = SigLip.Value;
        var ids = tok.Encode("A photo of the license, version 2!");
        Assert.Equal("a photo of the license version 2", tok.Decode(ids, skipSpecialTokens: true));
        Assert.EndsWith("</s>", tok.Decode(ids));
        Assert.Throws<ClipGenException>(() => tok.Decode([1000]));
        Assert.Throws<ClipGenException>(() => tok.Decode([-1]));
    }

    [Fact]
    public void Corrupt_or_wrong_files_are_clear_errors_naming_the_file()
    {
        var dir = Directory.CreateTempSubdirectory("clipgen-spm-");
        try
        {
            string Write(string name, byte[] data) { var p = Path.Combine(dir.FullName, name); File.WriteAllBytes(p, data); return p; }
            var model = File.ReadAllBytes(UnigramPath);
            var files = new[]
            {
                Write("empty.model", []),
                Write("text.model", "[PAD]\n[UNK]\nhello\n"u8.ToArray()),
                Write("truncated.model", model[..(model.Length / 2)]),
                Write("garbage.model", [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 7919 >> 3))]),
                Write("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\n"u8.ToArray()),
            };
            foreach (var f in files)
            {
                var e = Assert.Throws<ClipGenException>(() => SentencePieceTextTokenizer.FromFile(f, TextCleaning.Canonicalize, 1, 1));
                Assert.Contains(f, e.Message);
            }
            var missing = Path.Combine(dir.FullName, "missing.model");
            Assert.Contains(missing, Assert.Throws<ClipGenException>(() => SentencePieceTextTokenizer.FromFile(missing, TextCleaning.Whitespace)).Message);
            // Ids that contradict the model.
            Assert.Contains("end-of-text piece 1", Assert.Throws<ClipGenException>(() => SentencePieceTextTokenizer.FromFile(UnigramPath, TextCleaning.Whitespace, endId: 49407)).Message);
            Assert.Contains("pad id 5000", Assert.Throws<ClipGenException>(() => SentencePieceTextTokenizer.FromFile(UnigramPath, TextCleaning.Whitespace, 1, 5000)).Message);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void Added_start_piece_is_a_control_piece_after_the_last_and_changes_no_id()
    {
        var data = File.ReadAllBytes(UnigramPath);
        var model = SentencePieceModelFile.Parse(data, "spm.model");
        Assert.Equal((-1, 1, 0, 2), (model.BosId, model.EosId, model.PadId, model.UnkId));
        var patched = SentencePieceModelFile.Parse(model.WithControlStartPiece(data, out int bos), "patched");
        Assert.Equal(1000, bos);
        Assert.Equal(1001, patched.Pieces.Count);
        Assert.Equal((1000, 1, 0, 2), (patched.BosId, patched.EosId, patched.PadId, patched.UnkId));
        Assert.Equal(SentencePieceModelFile.PieceType.Control, patched.Pieces[1000].Type);
        Assert.Equal(model.Pieces, patched.Pieces.Take(1000));
    }
}
