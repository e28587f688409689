using System.Text;
using ClipGen.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace ClipGen.Tests.Text;

/// <summary>A string built to break tokenizers: any UTF-16 code unit (unpaired surrogates too), controls, combining marks,
/// astral letters and emoji, entities, special-token spellings, contractions, and sometimes tens of thousands of characters.</summary>
public sealed record HostileText(string Value)
{
    public override string ToString() => $"HostileText(len {Value.Length}: {string.Concat(Value.Take(60).Select(c => c is >= ' ' and < '\u007f' ? c.ToString() : $"\\u{(int)c:X4}"))})";
}

/// <summary>Printable ASCII text.</summary>
public sealed record AsciiText(string Value);

public static class TextArbitraries
{
    static readonly string[] Atoms =
    [
        "a", "photo", "of", "the", "CAT", " ", "  ", "\t", "\n", "\r\n", "\u00A0", "\u3000", "\u200B", "\u0000", "\u0007", "\u000B", "\u001B[1m",
        "\u0085", "\u0099", "&", "&amp;", "&amp;amp;", "&#", "&#x", "&#x1F600;", "&#128;", "&#99999999999;", "&lt;", "<", ">", "'s", "'LL", "'",
        "<|startoftext|>", "<|endoftext|>", "<|\u017Ftartoftext|>", "</w>", "\u017F", "\u0130", "\u03A3", "\u039F\u0394\u039F\u03A3", "\u0345",
        "e\u0301", "\u0301", "\uFB01", "\uFF21", "\u201C", "\u2019", "\U0001F355", "\U0001F469\u200D\U0001F469", "\U0001D49C", "\U00010400",
        "\u4E00\u53EA", "\u0928\u092E", "\u0663", "\u00BD", "\uD800", "\uDC00", "\uDBFF\uDBFF", "\uFEFF", "\uFFFD", "\uFFFF", "1", "42", "...", "!!", "C++",
    ];

    static Gen<string> AnyChar() =>
        Gen.OneOf(
            Gen.Choose(0, 0x7F).Select(c => ((char)c).ToString()),
            Gen.Choose(0x80, 0xFFFF).Select(c => ((char)c).ToString()),          // includes unpaired surrogates
            Gen.Choose(0x10000, 0x10FFFF).Select(char.ConvertFromUtf32),
            Gen.Elements(Atoms));

    static Gen<string> Short() => Gen.ArrayOf(AnyChar()).Select(string.Concat);

    public static Arbitrary<HostileText> Hostile() =>
        Arb.From(Gen.OneOf(
            Short(), Short(), Short(), Short(),
            // very long: a random fragment repeated, sometimes as one huge "word"
            Gen.Zip(Short(), Gen.Choose(200, 4000)).Select(t => string.Concat(Enumerable.Repeat(t.Item1, t.Item2))),
            Gen.Choose(1000, 60000).Select(n => new string('a', n)),
            Gen.Zip(Gen.Choose(100, 3000), Gen.Choose(0, 25)).Select(t => new string((char)('a' + t.Item2), t.Item1) + "\u00E9" + new string('q', t.Item1)))
        .Select(s => new HostileText(s)));

    public static Arbitrary<AsciiText> Ascii() =>
        Arb.From(Gen.ArrayOf(Gen.OneOf(Gen.Choose(0x20, 0x7E).Select(c => ((char)c).ToString()), Gen.Elements("cat", "dog", "'s", " ", "\t", "it's", "&amp;")))
            .Select(a => new AsciiText(string.Concat(a))));
}

[Properties(Arbitrary = [typeof(TextArbitraries)], MaxTest = 300)]
public sealed class TokenizerPropertyTests
{
    static ClipTokenizer Tok => TokenizerFixtures.Gz;

    [Property]
    public bool Encode_never_throws_and_is_framed(HostileText t)
    {
        var ids = Tok.Encode(t.Value);
        return ids.Length >= 2 && ids[0] == 49406 && ids[^1] == 49407 && ids.All(i => i is >= 0 and < 49408);
    }

    [Property]
    public bool Batch_rows_fit_and_keep_start_and_end(HostileText t, PositiveInt ctxRaw)
    {
        int ctx = 2 + ctxRaw.Get % 100;
        var texts = new[] { t.Value, "", t.Value + " cat" };
        var rows = Tok.EncodeBatch(texts, ctx, TruncationMode.Truncate, out var truncated);
        if (rows.Length != texts.Length * ctx) return false;
        for (int r = 0; r < texts.Length; r++)
        {
            var row = rows.AsSpan(r * ctx, ctx);
            int full = Tok.Encode(texts[r]).Length;
            int len = Math.Min(full, ctx);
            if (row[0] != 49406 || row[len - 1] != 49407) return false;
            foreach (var pad in row[len..]) if (pad != 0) return false;
            if ((full > ctx) != truncated.Contains(r)) return false;
        }
        return true;
    }

    [Property]
    public bool Bytes_tokenizer_round_trips_UTF8(HostileText t)
    {
        var ids = BytesTokenizer.Instance.Encode(t.Value);
        var expected = Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(t.Value)); // unpaired surrogates → U+FFFD
        return ids[0] == 257 && ids[^1] == 258 && BytesTokenizer.Instance.Decode(ids, skipSpecialTokens: true) == expected;
    }

    [Property]
    public bool Decode_of_Encode_is_the_cleaned_text_with_a_space_after_each_word(AsciiText t)
    {
        // OpenAI's decode joins the token strings and turns each '</w>' into a space, so an encoded piece comes back
        // followed by one space; special tokens have no '</w>'. Spacing apart, the cleaned text itself comes back.
        var cleaned = ClipTextCleaner.Clean(t.Value);
        var ids = Tok.Encode(t.Value);
        var decoded = Tok.Decode(ids[1..^1]);
        var expected = new StringBuilder();
        foreach (var piece in ClipPreTokenizer.Split(cleaned))
            expected.Append(piece).Append(piece is ClipTokenizer.StartToken or ClipTokenizer.EndToken ? "" : " ");
        return decoded == expected.ToString() && decoded.Replace(" ", "") == cleaned.Replace(" ", "");
    }

    [Property]
    public bool Cleaning_is_idempotent_on_ascii(AsciiText t)
    {
        var once = ClipTextCleaner.Clean(t.Value);
        return !once.Contains('&') ? ClipTextCleaner.Clean(once) == once : true;
    }
}
