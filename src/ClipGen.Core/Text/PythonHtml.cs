using System.Text;

namespace ClipGen.Text;

/// <summary>
/// A faithful port of CPython's <c>html.unescape</c> (Lib/html/__init__.py), which CLIP's <c>basic_clean</c> applies twice.
/// <see cref="System.Net.WebUtility.HtmlDecode(string)"/> is not used because it differs from Python: it knows only the
/// HTML 4 entities (no <c>&amp;NotNestedLessLess;</c>), needs the ';' (Python decodes <c>&amp;ampx</c> to <c>&amp;x</c> by the
/// longest-prefix rule) and maps numeric references in 0x80–0x9F, 0 and the non-characters differently.
/// </summary>
static partial class PythonHtml
{
    /// <summary>Built on first use, after the table in the other part of this class is initialised
    /// (static field initialisers of a partial class run in no defined order across files).</summary>
    static class Lookup
    {
        public static readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> Html5 = Build();

        static Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> Build()
        {
            var d = new Dictionary<string, string>(Html5Table.Length, StringComparer.Ordinal);
            foreach (var (name, value) in Html5Table) d[name] = value;
            return d.GetAlternateLookup<ReadOnlySpan<char>>();
        }
    }

    internal static IReadOnlyList<(string Name, string Value)> Html5Entries() => Html5Table;

    /// <summary>Python's <c>html._invalid_charrefs</c>: numeric references replaced as browsers do (Windows-1252 for 0x80–0x9F).</summary>
    internal static readonly string[] Cp1252C1 =
    [
        "\u20AC", "\u0081", "\u201A", "\u0192", "\u201E", "\u2026", "\u2020", "\u2021",
        "\u02C6", "\u2030", "\u0160", "\u2039", "\u0152", "\u008D", "\u017D", "\u008F",
        "\u0090", "\u2018", "\u2019", "\u201C", "\u201D", "\u2022", "\u2013", "\u2014",
        "\u02DC", "\u2122", "\u0161", "\u203A", "\u0153", "\u009D", "\u017E", "\u0178",
    ];

    /// <summary>Python's <c>html.unescape(s)</c>.</summary>
    public static string Unescape(string s)
    {
        int amp = s.IndexOf('&');
        if (amp < 0) return s;
        var sb = new StringBuilder(s.Length);
        sb.Append(s, 0, amp);
        int i = amp;
        while (i < s.Length)
        {
            if (s[i] != '&') { sb.Append(s[i]); i++; continue; }
            int consumed = TryCharRef(s, i + 1, sb);
            if (consumed == 0) { sb.Append('&'); i++; }
            else i += 1 + consumed;
        }
        return sb.ToString();
    }

    /// <summary>
    /// Matches Python's <c>&amp;(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f &lt;&amp;#;]{1,32};?)</c> at <paramref name="p"/> (just after '&amp;'),
    /// appends the replacement and returns how many characters after the '&amp;' it consumed; 0 when the pattern does not match.
    /// </summary>
    static int TryCharRef(string s, int p, StringBuilder sb)
    {
        if (p >= s.Length) return 0;
        if (s[p] == '#')
        {
            bool hex = p + 1 < s.Length && (s[p + 1] == 'x' || s[p + 1] == 'X');
            int start = p + (hex ? 2 : 1);
            int end = start;
            while (end < s.Length && (hex ? char.IsAsciiHexDigit(s[end]) : char.IsAsciiDigit(s[end]))) end++;
            if (end == start) return 0;
            int stop = end < s.Length && s[end] == ';' ? end + 1 : end;
            sb.Append(NumericRef(s.AsSpan(start, end - start), hex));
            return stop - p;
        }
        // Named: up to 32 code points that are not \t \n \f space < & # ;, then an optional ';'.
        int q = p, count = 0;
        while (q < s.Length && count < 32)
        {
            char c = s[q];
            if (c is '\t' or '\n' or '\f' or ' ' or '<' or '&' or '#' or ';') break;
            q += char.IsHighSurrogate(c) && q + 1 < s.Length && char.IsLowSurrogate(s[q + 1]) ? 2 : 1;
            count++;
        }
        if (count == 0) return 0;
        if (q < s.Length && s[q] == ';') q++;
        var name = s.AsSpan(p, q - p);
        if (Lookup.Html5.TryGetValue(name, out var full)) { sb.Append(full); return q - p; }
        // The longest prefix (of at least 2 code points, shorter than the whole) that is an entity name.
        // Python slices by code points; entity names are ASCII, so a prefix ending inside a surrogate pair never matches.
        for (int x = name.Length - 1; x >= 2; x--)
        {
            if (Lookup.Html5.TryGetValue(name[..x], out var v))
            {
                sb.Append(v).Append(name[x..]);
                return q - p;
            }
        }
        sb.Append('&').Append(name);
        return q - p;
    }

    static string NumericRef(ReadOnlySpan<char> digits, bool hex)
    {
        // Python's int() has no upper bound; anything above 0x10FFFF becomes U+FFFD.
        long num = 0;
        foreach (char c in digits)
        {
            num = num * (hex ? 16 : 10) + (hex ? HexValue(c) : c - '0');
            if (num > 0x10FFFF) return "\uFFFD";
        }
        if (num == 0) return "\uFFFD";
        if (num == 0x0D) return "\r";
        if (num is >= 0x80 and <= 0x9F) return Cp1252C1[num - 0x80];
        if (num is >= 0xD800 and <= 0xDFFF) return "\uFFFD";
        if (IsInvalidCodepoint((int)num)) return "";
        return char.ConvertFromUtf32((int)num);
    }

    static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary>Python's <c>html._invalid_codepoints</c>: references to these become the empty string.</summary>
    static bool IsInvalidCodepoint(int n) =>
        n is (>= 0x1 and <= 0x8) or 0xB or (>= 0xE and <= 0x1F) or (>= 0x7F and <= 0x9F) or (>= 0xFDD0 and <= 0xFDEF)
        || (n & 0xFFFE) == 0xFFFE;
}
