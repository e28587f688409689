using ClipGen.Text;
using Xunit;

namespace ClipGen.Tests.Text;

/// <summary>The Python behaviours CLIP's cleaning relies on; expected values come from CPython 3.11 and regex 2026.5.9.</summary>
public sealed class PythonSemanticsTests
{
    [Theory]
    [InlineData("&amp;", "&")]
    [InlineData("&amp", "&")]
    [InlineData("&ampx", "&x")]
    [InlineData("&AMP;", "&")]
    [InlineData("&#39;", "'")]
    [InlineData("&#x27;", "'")]
    [InlineData("&#X27", "'")]
    [InlineData("&#0;", "\uFFFD")]
    [InlineData("&#128;", "\u20AC")]
    [InlineData("&#129;", "\u0081")]
    [InlineData("&#xD800;", "\uFFFD")]
    [InlineData("&#1114112;", "\uFFFD")]
    [InlineData("&#11;", "")]
    [InlineData("&#xFFFF;", "")]
    [InlineData("&NotNestedLessLess;", "\u2AA1\u0338")]
    [InlineData("&notin;", "\u2209")]
    [InlineData("&notit;", "\u00ACit;")]
    [InlineData("&foo;", "&foo;")]
    [InlineData("& amp;", "& amp;")]
    [InlineData("&#;", "&#;")]
    [InlineData("&#x;", "&#x;")]
    [InlineData("a&lt;b&gt;c", "a<b>c")]
    [InlineData("&LT;", "<")]
    [InlineData("&lt", "<")]
    [InlineData("&ltx", "<x")]
    [InlineData("&copy2025", "\u00A92025")]
    [InlineData("&#65&#66;", "AB")]
    [InlineData("&#x1F600;", "\U0001F600")]
    [InlineData("&#99999999999999999999;", "\uFFFD")]
    [InlineData("&Ntilde;", "\u00D1")]
    [InlineData("&NTILDE;", "&NTILDE;")]
    [InlineData("&\U0001F600;", "&\U0001F600;")]
    [InlineData("&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;", "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;")]
    public void Html_unescape_is_Pythons(string input, string expected) => Assert.Equal(expected, PythonHtml.Unescape(input));

    [Theory]
    [InlineData("&#128;", "\u20AC")]      // WebUtility gives U+0080
    [InlineData("&ampx", "&x")]           // WebUtility needs the ';'
    [InlineData("&NotNestedLessLess;", "\u2AA1\u0338")] // not an HTML 4 entity
    public void WebUtility_HtmlDecode_differs_here(string input, string python)
    {
        Assert.Equal(python, PythonHtml.Unescape(input));
        Assert.NotEqual(python, System.Net.WebUtility.HtmlDecode(input));
    }

    [Theory]
    [InlineData("\u0130stanbul", "i\u0307stanbul")]
    [InlineData("\u039F\u0394\u039F\u03A3", "\u03BF\u03B4\u03BF\u03C2")]
    [InlineData("\u03A3", "\u03C3")]
    [InlineData("\u0391\u03A3 \u03A3", "\u03B1\u03C2 \u03C3")]
    [InlineData("\u0391\u03A3.", "\u03B1\u03C2.")]
    [InlineData("\u0391\u03A3'\u0391", "\u03B1\u03C3'\u03B1")]
    [InlineData("A\u03A3b", "a\u03C3b")]
    [InlineData("\U00010400\U00010401", "\U00010428\U00010429")]
    [InlineData("\u01C5", "\u01C6")]
    [InlineData("\u1E9E", "\u00DF")]
    [InlineData("\u212A", "k")]
    [InlineData("\u0391\u03A3\u0301", "\u03B1\u03C2\u0301")]
    public void Lower_is_Pythons(string input, string expected) => Assert.Equal(expected, PythonUnicode.Lower(input));

    [Fact]
    public void Whitespace_is_the_regex_modules()
    {
        Assert.Equal("a b c d", PythonUnicode.WhitespaceClean("a\u00A0b\u3000\u2028c\u0085 d"));
        Assert.Equal("a\u200Bb", PythonUnicode.WhitespaceClean("a\u200Bb"));   // zero-width space is not \s
        Assert.Equal("a\u001Cb", PythonUnicode.WhitespaceClean("a\u001Cb"));   // nor U+001C, though str.isspace() says so
        Assert.Equal("x", PythonUnicode.Strip("\u001Cx\u001F"));                // ... which str.strip() removes
    }

    [Theory]
    [InlineData("it's", new[] { "it", "'s" })]
    [InlineData("a'\u017F", new[] { "a", "'\u017F" })]               // IGNORECASE: ſ matches s
    [InlineData("<|\u017Ftartoftext|>x", new[] { "<|\u017Ftartoftext|>", "x" })]
    [InlineData("x\u0345y", new[] { "x", "y" })]                      // U+0345 matches no alternative
    [InlineData("\U0001D49C\U0001D49E1", new[] { "\U0001D49C\U0001D49E", "1" })] // astral letters stay one word
    [InlineData("!!'s", new[] { "!!'", "s" })]
    [InlineData("a<|endoftext|>", new[] { "a", "<|endoftext|>" })]
    [InlineData("!<|endoftext|>", new[] { "!<|", "endoftext", "|>" })]
    [InlineData("12\u0663", new[] { "1", "2", "\u0663" })]
    public void Pre_tokenizer_is_the_regex(string cleaned, string[] pieces) => Assert.Equal(pieces, ClipPreTokenizer.Split(cleaned));

    [Fact]
    public void Ftfy_subset()
    {
        Assert.Equal("\"curly quotes\" and it's", ClipTextCleaner.Clean("\u201Ccurly quotes\u201D and it\u2019s"));
        Assert.Equal("fullwidth text 123", ClipTextCleaner.Clean("\uFF26\uFF35\uFF2C\uFF2C\uFF37\uFF29\uFF24\uFF34\uFF28 \uFF54\uFF45\uFF58\uFF54 \uFF11\uFF12\uFF13"));
        Assert.Equal("caf\u00E9", ClipTextCleaner.Clean("cafe\u0301"));
        Assert.Equal("nullchar", ClipTextCleaner.Clean("null\u0000char"));
        Assert.Equal("office", ClipTextCleaner.Clean("o\uFB03ce"));
        Assert.Equal("red", ClipTextCleaner.Clean("\u001B[31mred\u001B[0m"));
        Assert.Equal("\u2026", ClipTextCleaner.Clean("\u0085"));            // C1 control read as Windows-1252
        Assert.Equal("a\uFFFDb", ClipTextCleaner.Clean("a\uD800b"));        // unpaired surrogate
        Assert.Equal("&", ClipTextCleaner.Clean("&amp;amp;amp;"));           // ftfy unescapes until stable, then twice more
        Assert.Equal("< &amp;", ClipTextCleaner.Clean("< &amp;amp;amp;"));  // ... but not on a line holding '<'
    }
}
