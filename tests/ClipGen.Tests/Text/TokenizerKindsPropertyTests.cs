using ClipGen.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace ClipGen.Tests.Text;

/// <summary>Properties that hold for every tokenizer kind and for open_clip's cleaning functions, on hostile text.</summary>
[Properties(Arbitrary = [typeof(TextArbitraries)], MaxTest = 200)]
public sealed class TokenizerKindsPropertyTests
{
    static readonly Lazy<WordPieceTextTokenizer> WordPiece = new(() =>
    {
        var path = Path.Combine(Path.GetTempPath(), $"clipgen-wp-props-{Environment.ProcessId}.txt");
        var tokens = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "photo", "a", "of", "!", ",", "." };
        for (char c = 'a'; c <= 'z'; c++) { tokens.Add(c.ToString()); tokens.Add("##" + c); }
        File.WriteAllLines(path, tokens.Distinct());
        try { return WordPieceTextTokenizer.FromFile(path, TextCleaning.Whitespace, stripSepToken: false); }
        finally { File.Delete(path); }
    });

    static readonly Lazy<ITextTokenizer[]> All = new(() =>
    [
        TokenizerFixtures.Gz,
        BytesTokenizer.Instance,
        SentencePieceTokenizerTests.SigLip.Value,
        SentencePieceTokenizerTests.Gemma.Value,
        WordPiece.Value,
    ]);

    static bool IsCleanSpacing(string s) =>
        !s.StartsWith(' ') && !s.EndsWith(' ') && !s.Contains("  ") && !s.Any(c => PythonUnicode.IsPySpace(c) && c != ' ');

    [Property]
    public bool Canonical_text_is_a_fixed_point_without_punctuation_or_stray_spaces(HostileText t)
    {
        var c = OpenClipCleaner.Clean(t.Value, TextCleaning.Canonicalize);
        return OpenClipCleaner.Canonicalize(c) == c
            && c.IndexOfAny(OpenClipCleaner.AsciiPunctuation.ToCharArray()) < 0
            && PythonUnicode.Lower(c) == c
            && IsCleanSpacing(c);
    }

    [Property]
    public bool Whitespace_and_lower_cleaning_leave_single_spaces(HostileText t)
    {
        var w = OpenClipCleaner.Clean(t.Value, TextCleaning.Whitespace);
        var l = OpenClipCleaner.Clean(t.Value, TextCleaning.Lower);
        return IsCleanSpacing(w) && PythonUnicode.SplitJoin(w) == w && l == PythonUnicode.Lower(w);
    }

    [Property]
    public bool Canonicalize_is_idempotent_on_any_string(HostileText t)
    {
        var once = OpenClipCleaner.Canonicalize(t.Value);
        return OpenClipCleaner.Canonicalize(once) == once;
    }

    [Property(MaxTest = 60)]
    public Property Every_kind_frames_truncates_and_pads_rows(HostileText a, HostileText b)
    {
        return Prop.ForAll(Gen.Choose(2, 80).ToArbitrary(), ctx =>
        {
            foreach (var tok in All.Value)
            {
                string[] texts = [a.Value, b.Value, ""];
                var rows = tok.EncodeBatch(texts, ctx, TruncationMode.Truncate, out var cut);
                if (rows.Length != texts.Length * ctx) return false;
                var expectedCut = new List<int>();
                for (int i = 0; i < texts.Length; i++)
                {
                    var ids = tok.Encode(texts[i]);
                    if (ids.Length == 0 || ids[^1] != tok.EndId) return false;
                    if (tok.StartId is int start && ids[0] != start) return false;
                    if (ids.Any(id => id < 0 || id >= tok.VocabSize)) return false;
                    var row = rows.AsSpan(i * ctx, ctx);
                    if (ids.Length > ctx)
                    {
                        expectedCut.Add(i);
                        for (int k = 0; k < ctx - 1; k++) if (row[k] != ids[k]) return false;
                        if (row[ctx - 1] != tok.EndId) return false;
                    }
                    else
                    {
                        for (int k = 0; k < ids.Length; k++) if (row[k] != ids[k]) return false;
                        for (int k = ids.Length; k < ctx; k++) if (row[k] != tok.PadId) return false;
                    }
                }
                if (!cut.SequenceEqual(expectedCut)) return false;
            }
            return true;
        });
    }
}
