using ClipGen.Text;
using Xunit;

namespace ClipGen.Tests.Text;

/// <summary>
/// The "wordpiece" kind on a small vocabulary written here, against cases worked out by hand from Hugging Face's BERT
/// normaliser, pre-tokenizer and WordPiece model (tokenizers' bert.rs, wordpiece/mod.rs). Not checked against Hugging
/// Face's own output: no BERT vocabulary or transformers install is available here (see docs/tokenizer.md).
/// </summary>
public sealed class WordPieceTokenizerTests : IDisposable
{
    // id = line number, as in bert-base-uncased's vocab.txt (there [PAD]=0, [UNK]=100, [CLS]=101, [SEP]=102, [MASK]=103).
    static readonly string[] Vocab =
    [
        "[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",                      // 0..5
        "a", "photo", "of", "the", "cat", "dog", "##s", "un", "##aff", "##able",          // 6..15
        ",", ".", "!", "$", "'", "_", "(", ")", "<", ">", "-", "~", "|",                   // 16..28
        "cafe", "naive", "istanbul", "中", "文", "©", "ǆ", "ᄒ", "##ᅡ", "##ᆫ", "x", "##x",  // 29..40
        "", "hello", "world", "ς", "σ", "&", "[", "]",                                    // 41 is an empty line: no token
    ];

    readonly string _dir = Directory.CreateTempSubdirectory("clipgen-wp-").FullName;
    readonly string _vocab;

    public WordPieceTokenizerTests()
    {
        _vocab = Path.Combine(_dir, "vocab.txt");
        File.WriteAllText(_vocab, string.Join('\n', Vocab) + "\n");
    }

    public void Dispose() => Directory.Delete(_dir, true);

    static int Id(string token) => Array.IndexOf(Vocab, token);

    WordPieceTextTokenizer Tok(bool strip = false, TextCleaning clean = TextCleaning.Whitespace) =>
        WordPieceTextTokenizer.FromFile(_vocab, clean, strip);

    int[] Ids(params string[] tokens) => [Id("[CLS]"), .. tokens.Select(Id), Id("[SEP]")];

    public static TheoryData<string, string[]> Cases() => new()
    {
        { "a photo of the cat", ["a", "photo", "of", "the", "cat"] },
        { "A Photo OF the CATS", ["a", "photo", "of", "the", "cat", "##s"] },                  // lower case, continuation
        { "unaffable", ["un", "##aff", "##able"] },                                         // BERT's documented example
        { "cat,dog.", ["cat", ",", "dog", "."] },                                           // punctuation isolated
        { "$a<cat>|dog~", ["$", "a", "<", "cat", ">", "|", "dog", "~"] },                   // ASCII symbols are punctuation
        { "cat_dog", ["cat", "_", "dog"] },                                                 // '_' too
        { "don't", ["[UNK]", "'", "[UNK]"] },                                               // "don", "t" not in the vocabulary
        { "Café naïve", ["cafe", "naive"] },                                                // accents stripped (NFD, Mn removed)
        { "İstanbul", ["istanbul"] },                                                       // İ → I + U+0307 → I → i
        { "中文", ["中", "文"] },                                                            // CJK ideographs split
        { "a\u200Bcat", ["[UNK]"] },                                                        // U+200B (Cf) removed: "acat" is one unknown word
        { "cat\u200Bdog", ["[UNK]"] },
        { "cat\u00A0dog", ["cat", "dog"] },                                                 // NBSP is whitespace
        { "©cat", ["[UNK]"] },                                                              // © is a symbol (So), part of the word
        { "©", ["©"] },
        { "ǅ", ["[UNK]"] },                                                                 // ftfy's ligature rule first: "Dž" → "dz"
        { "한", ["ᄒ", "##ᅡ", "##ᆫ"] },                                                       // Hangul stays decomposed (NFD, no NFC)
        { "ΣΑΣ", ["[UNK]"] },
        { "Σ", ["σ"] },                                                                     // per-character lower case: no final sigma
        { "xxxx", ["x", "##x", "##x", "##x"] },
        { "(cat)", ["(", "cat", ")"] },
        { "a [SEP] cat", ["a", "[SEP]", "cat"] },                                          // special tokens typed in the text
        { "a[MASK]cat", ["a", "[MASK]", "cat"] },
        { "a [sep] cat", ["a", "[", "[UNK]", "]", "cat"] },                                  // matched case-sensitively only
        { "[CLS][PAD]", ["[CLS]", "[PAD]"] },
        { "", [] },
        { "   ", [] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Hand_checked_cases(string text, string[] tokens)
    {
        Assert.Equal(Ids(tokens), Tok().Encode(text));
    }

    [Theory]
    [InlineData("\u01C5", "\u01C6")]                   // title case lower-cases (Rust's char::to_lowercase)
    [InlineData("A\u0000B\uFFFDC\u0007D", "abcd")]     // NUL, U+FFFD and Cc controls removed
    [InlineData("a\tb\nc\rd", "a b c d")]              // tab, LF, CR become spaces
    [InlineData("a\u00ADb\uE000c", "abc")]              // Cf (soft hyphen) and Co (private use) removed
    [InlineData("x\u4E00y\u3400z", "x \u4E00 y \u3400 z")]
    [InlineData("\uD86E\uDC20", "\uD86E\uDC20")]        // U+2B820 is not in Hugging Face's table (it starts at U+2B920)
    [InlineData("\uD86E\uDD20", " \uD86E\uDD20 ")]      // U+2B920 is
    [InlineData("\u00C9COLE \u0130", "ecole i")]
    [InlineData("\uD55C", "\u1112\u1161\u11AB")]       // Hangul: decomposed, not composed again
    public void Bert_normaliser(string input, string expected)
    {
        Assert.Equal(expected, BertTextNormalizer.Normalize(input));
    }

    [Fact]
    public void Matches_an_independent_python_reading_of_the_hf_rules_on_random_strings()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(
            Path.Combine(Fixtures.RepoRoot, "tests", "ClipGen.Tests", "Text", "Data", "wordpiece_reference.json")));
        var path = Path.Combine(_dir, "random-vocab.txt");
        File.WriteAllLines(path, doc.RootElement.GetProperty("vocab").EnumerateArray().Select(e => e.GetString()!));
        var tok = WordPieceTextTokenizer.FromFile(path);
        var cases = doc.RootElement.GetProperty("cases").EnumerateArray()
            .Select(c => (Text: c.GetProperty("text").GetString()!, Ids: c.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray()))
            .ToList();
        Assert.True(cases.Count >= 400);
        var bad = cases.Where(c => !tok.EncodeCleaned(c.Text).SequenceEqual(c.Ids)).ToList();
        Assert.True(bad.Count == 0, $"{bad.Count} of {cases.Count} differ; first: {(bad.Count > 0 ? System.Text.Json.JsonSerializer.Serialize(bad[0].Text) + $" expected [{string.Join(',', bad[0].Ids)}] got [{string.Join(',', tok.EncodeCleaned(bad[0].Text))}]" : "")}");
    }

    [Fact]
    public void Words_longer_than_100_code_points_are_unknown()
    {
        var tok = Tok();
        Assert.Equal(Ids([.. Enumerable.Repeat("##x", 99).Prepend("x")]), tok.Encode(new string('x', 100)));
        Assert.Equal(Ids("[UNK]"), tok.Encode(new string('x', 101)));
        // Counted in code points, not UTF-16 units: 60 astral letters are 120 units but 60 characters (unknown either way
        // here, as they are not in the vocabulary, but by WordPiece's search rather than the length rule).
        Assert.Equal(Ids("[UNK]"), tok.Encode(string.Concat(Enumerable.Repeat("\U0001D49C", 60))));
    }

    [Fact]
    public void Strip_sep_token_replaces_sep_ids_by_zero()
    {
        var tok = Tok(strip: true);
        Assert.Equal(0, tok.EndId);
        Assert.Equal([Id("[CLS]"), Id("cat"), 0, Id("dog"), 0], tok.Encode("cat [SEP] dog"));
        var row = tok.EncodeBatch(["a photo of the cat"], 4);
        Assert.Equal([Id("[CLS]"), Id("a"), Id("photo"), 0L], row);
    }

    [Fact]
    public void Batch_rows_are_framed_truncated_and_padded_like_the_hf_tokenizer()
    {
        var tok = Tok();
        var rows = tok.EncodeBatch(["a photo of the cat", "cat"], 5, TruncationMode.Truncate, out var cut);
        Assert.Equal([0], cut);
        Assert.Equal([Id("[CLS]"), Id("a"), Id("photo"), Id("of"), Id("[SEP]"), Id("[CLS]"), Id("cat"), Id("[SEP]"), 0, 0], rows);
        Assert.Equal(3, tok.StartId);
        Assert.Equal(Vocab.Length, tok.VocabSize);
    }

    [Fact]
    public void Cleaning_runs_first()
    {
        // whitespace (default): ftfy + html.unescape twice, whitespace collapsed; canonicalize also drops punctuation.
        Assert.Equal(Ids("cat", "&", "dog"), Tok().Encode("cat &amp;amp;\n\t dog"));
        Assert.Equal(Ids("cat", "dog"), Tok(clean: TextCleaning.Canonicalize).Encode("cat, &amp; dog!"));
    }

    [Fact]
    public void Decode_joins_continuations()
    {
        var tok = Tok();
        Assert.Equal("unaffable cats", tok.Decode(tok.Encode("unaffable cats"), skipSpecialTokens: true));
        Assert.Throws<ClipGenException>(() => tok.Decode([Array.IndexOf(Vocab, "")]));   // the empty line
        Assert.Throws<ClipGenException>(() => tok.Decode([Vocab.Length]));
    }

    [Fact]
    public void Bad_vocabularies_are_clear_errors_naming_the_file()
    {
        string Write(string name, string text) { var p = Path.Combine(_dir, name); File.WriteAllText(p, text); return p; }
        var noCls = Write("nocls.txt", "[PAD]\n[UNK]\n[SEP]\nthe\n");
        Assert.Contains(noCls, Assert.Throws<ClipGenException>(() => WordPieceTextTokenizer.FromFile(noCls)).Message);
        var dup = Write("dup.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nthe\nthe\n");
        var e = Assert.Throws<ClipGenException>(() => WordPieceTextTokenizer.FromFile(dup));
        Assert.Contains("line 6", e.Message);
        var binary = Path.Combine(_dir, "spm.model");
        File.Copy(Fixtures.Path_("tokenizer", "sentencepiece", "spm.model"), binary);
        Assert.Contains(binary, Assert.Throws<ClipGenException>(() => WordPieceTextTokenizer.FromFile(binary)).Message);
        var missing = Path.Combine(_dir, "missing.txt");
        Assert.Contains(missing, Assert.Throws<ClipGenException>(() => WordPieceTextTokenizer.FromFile(missing)).Message);
    }
}
