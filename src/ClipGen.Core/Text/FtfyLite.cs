using System.Text;

namespace ClipGen.Text;

/// <summary>
/// <c>ftfy.fix_text</c> (ftfy 6.3.1, default configuration): its fixes applied in ftfy's order and repeated until the text
/// stops changing, line by line: HTML entity unescaping (only while no '&lt;' has been seen), mojibake repair
/// (<see cref="FtfyEncoding"/>), C1 controls as Windows-1252, Latin ligatures, full/half-width forms, curly quotes, line
/// breaks, surrogates, terminal escapes, control characters, NFC. See docs/tokenizer.md for what can still differ.
/// </summary>
static class FtfyLite
{
    static readonly Dictionary<string, string> Entities = BuildEntities();
    static readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> EntityLookup = Entities.GetAlternateLookup<ReadOnlySpan<char>>();

    static Dictionary<string, string> BuildEntities()
    {
        // ftfy.chardata.HTML_ENTITIES: "&name;" for every HTML5 name that ends in ';', plus the upper-cased spellings.
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in PythonHtml.Html5Entries())
            if (name.EndsWith(';')) d["&" + name] = value;
        foreach (var (name, value) in PythonHtml.FtfyUpperTable) d["&" + name] = value;
        return d;
    }

    /// <summary>True when <see cref="Fix"/> would certainly return <paramref name="s"/> unchanged (cheap pre-check).</summary>
    static bool IsTrivial(string s)
    {
        foreach (char c in s)
            if (c < 0x20 ? c is not ('\t' or '\n' or '\f') : c >= 0x7F || c == '&')
                return false;
        return true;
    }

    public static string Fix(string text)
    {
        if (IsTrivial(text)) return text;
        var sb = new StringBuilder(text.Length);
        bool unescapeHtml = true; // "auto": becomes false for good at the first line that holds '<'
        int pos = 0;
        while (pos < text.Length)
        {
            int nl = text.IndexOf('\n', pos);
            int end = nl < 0 ? text.Length : nl + 1;
            var segment = text[pos..end];
            if (unescapeHtml && segment.Contains('<')) unescapeHtml = false;
            sb.Append(FixSegment(segment, unescapeHtml));
            pos = end;
        }
        return sb.ToString();
    }

    static string FixSegment(string s, bool unescapeHtml)
    {
        for (int round = 0; round < 32; round++)
        {
            var orig = s;
            if (unescapeHtml) s = UnescapeHtml(s);
            s = FtfyEncoding.Fix(s);
            s = FixC1Controls(s);
            s = FixLatinLigatures(s);
            s = FixCharacterWidth(s);
            s = UncurlQuotes(s);
            s = FixLineBreaks(s);
            s = FixSurrogates(s);
            s = RemoveTerminalEscapes(s);
            s = RemoveControlChars(s);
            s = Nfc(s);
            if (s == orig) break;
        }
        return s;
    }

    /// <summary>ftfy's <c>unescape_html</c>: <c>&amp;#?[0-9A-Za-z]{1,24};</c>, known names only, numeric ones through html.unescape.</summary>
    static string UnescapeHtml(string s)
    {
        if (!s.Contains('&')) return s;
        var sb = new StringBuilder(s.Length);
        int i = 0;
        while (i < s.Length)
        {
            if (s[i] == '&')
            {
                int p = i + 1;
                if (p < s.Length && s[p] == '#') p++;
                int q = p;
                while (q < s.Length && q - p < 24 && char.IsAsciiLetterOrDigit(s[q])) q++;
                if (q > p && q < s.Length && s[q] == ';')
                {
                    var match = s.AsSpan(i, q + 1 - i);
                    if (EntityLookup.TryGetValue(match, out var v)) { sb.Append(v); i = q + 1; continue; }
                    if (match.StartsWith("&#"))
                    {
                        var un = PythonHtml.Unescape(match.ToString());
                        sb.Append(un.Contains(';') ? match : un);
                        i = q + 1;
                        continue;
                    }
                    sb.Append(match);
                    i = q + 1;
                    continue;
                }
            }
            sb.Append(s[i]);
            i++;
        }
        return sb.ToString();
    }

    static string FixC1Controls(string s)
    {
        if (s.AsSpan().IndexOfAnyInRange('\u0080', '\u009F') < 0) return s;
        var sb = new StringBuilder(s.Length);
        foreach (char c in s) sb.Append(c is >= '\u0080' and <= '\u009F' ? PythonHtml.Cp1252C1[c - 0x80] : c);
        return sb.ToString();
    }

    static string? Ligature(char c) => c switch
    {
        '\u0132' => "IJ", '\u0133' => "ij", '\u0149' => "\u02BCn",
        '\u01F1' => "DZ", '\u01F2' => "Dz", '\u01F3' => "dz",
        '\u01C4' => "D\u017D", '\u01C5' => "D\u017E", '\u01C6' => "d\u017E",
        '\u01C7' => "LJ", '\u01C8' => "Lj", '\u01C9' => "lj",
        '\u01CA' => "NJ", '\u01CB' => "Nj", '\u01CC' => "nj",
        '\uFB00' => "ff", '\uFB01' => "fi", '\uFB02' => "fl", '\uFB03' => "ffi", '\uFB04' => "ffl",
        '\uFB05' => "\u017Ft", '\uFB06' => "st",
        _ => null,
    };

    static string FixLatinLigatures(string s) => MapChars(s, Ligature);

    /// <summary>ftfy's width map: U+3000 → space, and U+FF01–U+FFEF → their NFKC form where that differs.</summary>
    static string? Width(char c)
    {
        if (c == '\u3000') return " ";
        if (c is < '\uFF01' or > '\uFFEF') return null;
        var k = c.ToString().Normalize(NormalizationForm.FormKC);
        return k.Length == 1 && k[0] == c ? null : k;
    }

    static string FixCharacterWidth(string s) => MapChars(s, Width);

    static string? Quote(char c) => c switch
    {
        '\u02BC' or (>= '\u2018' and <= '\u201B') => "'",
        >= '\u201C' and <= '\u201F' => "\"",
        _ => null,
    };

    static string UncurlQuotes(string s) => MapChars(s, Quote);

    static string FixLineBreaks(string s) =>
        s.Replace("\r\n", "\n").Replace('\r', '\n').Replace('\u2028', '\n').Replace('\u2029', '\n').Replace('\u0085', '\n');

    /// <summary>Unpaired UTF-16 surrogates become U+FFFD (in Python they are lone code points that UTF-8 cannot encode).</summary>
    static string FixSurrogates(string s)
    {
        if (s.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') < 0) return s;
        var chars = s.ToCharArray();
        for (int i = 0; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1])) { i++; continue; }
            if (char.IsSurrogate(chars[i])) chars[i] = '\uFFFD';
        }
        return new string(chars);
    }

    /// <summary>ftfy's <c>remove_terminal_escapes</c>: ESC '[' (digits or ';')* letter.</summary>
    static string RemoveTerminalEscapes(string s)
    {
        int esc = s.IndexOf('\u001B');
        if (esc < 0) return s;
        var sb = new StringBuilder(s.Length);
        int i = 0;
        while (i < s.Length)
        {
            if (s[i] == '\u001B' && i + 1 < s.Length && s[i + 1] == '[')
            {
                int q = i + 2;
                while (q < s.Length && (char.IsDigit(s[q]) || s[q] == ';')) q++;
                if (q < s.Length && char.IsAsciiLetter(s[q])) { i = q + 1; continue; }
            }
            sb.Append(s[i]);
            i++;
        }
        return sb.ToString();
    }

    /// <summary>ftfy's <c>remove_control_chars</c>: U+0000–0008, 000B, 000E–001F, 007F, 206A–206F, FEFF, FFF9–FFFC.</summary>
    internal static bool IsRemovedControl(char c) =>
        c is (<= '\u0008') or '\u000B' or (>= '\u000E' and <= '\u001F') or '\u007F' or (>= '\u206A' and <= '\u206F')
            or '\uFEFF' or (>= '\uFFF9' and <= '\uFFFC');

    static string RemoveControlChars(string s)
    {
        int first = -1;
        for (int i = 0; i < s.Length; i++) if (IsRemovedControl(s[i])) { first = i; break; }
        if (first < 0) return s;
        var sb = new StringBuilder(s.Length);
        sb.Append(s, 0, first);
        for (int i = first; i < s.Length; i++) if (!IsRemovedControl(s[i])) sb.Append(s[i]);
        return sb.ToString();
    }

    static string Nfc(string s)
    {
        try { return s.IsNormalized(NormalizationForm.FormC) ? s : s.Normalize(NormalizationForm.FormC); }
        catch (ArgumentException) { return s; } // only for ill-formed UTF-16, which FixSurrogates has removed
    }

    static string MapChars(string s, Func<char, string?> map)
    {
        StringBuilder? sb = null;
        for (int i = 0; i < s.Length; i++)
        {
            var m = map(s[i]);
            if (m is null) { sb?.Append(s[i]); continue; }
            if (sb is null) { sb = new StringBuilder(s.Length + 8); sb.Append(s, 0, i); }
            sb.Append(m);
        }
        return sb?.ToString() ?? s;
    }
}
