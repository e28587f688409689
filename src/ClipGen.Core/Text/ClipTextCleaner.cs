using System.Buffers;

namespace ClipGen.Text;

/// <summary>
/// CLIP's text normalisation: <c>whitespace_clean(basic_clean(text)).lower()</c> from OpenAI's simple_tokenizer.py, where
/// <c>basic_clean</c> is <c>html.unescape(html.unescape(ftfy.fix_text(text))).strip()</c>. The result is the string that the
/// pre-tokenising pattern splits (the <c>cleaned</c> field of the reference cases). ftfy is approximated by <see cref="FtfyLite"/>.
/// </summary>
public static class ClipTextCleaner
{
    /// <summary>Printable ASCII except '&amp;', plus tab, line feed, carriage return and form feed: text made only of these
    /// is untouched by ftfy and html.unescape, so cleaning is just lower-casing and collapsing whitespace.</summary>
    static readonly SearchValues<char> FastChars = SearchValues.Create(
        "\t\n\f\r !\"#$%'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~");

    /// <summary>The cleaned, lower-cased text that OpenAI's tokenizer splits into words.</summary>
    public static string Clean(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.AsSpan().IndexOfAnyExcept(FastChars) < 0)
        {
            var buf = text.Length <= 1024 ? stackalloc char[text.Length] : new char[text.Length];
            return new string(buf[..CleanAscii(text, buf)]);
        }
        return PythonUnicode.Lower(PythonUnicode.WhitespaceClean(OpenClipCleaner.BasicClean(text)));
    }

    /// <summary>True when <paramref name="text"/> can be cleaned by <see cref="CleanAscii"/>.</summary>
    internal static bool IsFastAscii(ReadOnlySpan<char> text) => text.IndexOfAnyExcept(FastChars) < 0;

    /// <summary>Cleans text for which <see cref="IsFastAscii"/> holds into <paramref name="dst"/> (at least as long); returns the length.</summary>
    internal static int CleanAscii(ReadOnlySpan<char> text, Span<char> dst)
    {
        int w = 0;
        bool pendingSpace = false;
        foreach (char c in text)
        {
            if (c is ' ' or '\t' or '\n' or '\r' or '\f') { pendingSpace = w > 0; continue; }
            if (pendingSpace) { dst[w++] = ' '; pendingSpace = false; }
            dst[w++] = c is >= 'A' and <= 'Z' ? (char)(c | 0x20) : c;
        }
        return w;
    }
}
