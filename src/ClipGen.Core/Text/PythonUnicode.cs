using System.Globalization;
using System.Text;

namespace ClipGen.Text;

/// <summary>Python <c>str</c> semantics that .NET does not share: <c>isspace</c>, the <c>regex</c> module's <c>\s</c>, and <c>str.lower()</c>.</summary>
static class PythonUnicode
{
    /// <summary>The <c>regex</c> module's <c>\s</c> on str: the Unicode White_Space property.</summary>
    public static bool IsRegexSpace(int c) =>
        c is (>= 0x09 and <= 0x0D) or 0x20 or 0x85 or 0xA0 or 0x1680 or (>= 0x2000 and <= 0x200A)
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    /// <summary>Python's <c>str.isspace()</c> for one character (used by <c>str.strip()</c>): White_Space plus U+001C–U+001F.</summary>
    public static bool IsPySpace(int c) => IsRegexSpace(c) || c is >= 0x1C and <= 0x1F;

    /// <summary>Python's <c>str.strip()</c> with no argument.</summary>
    public static string Strip(string s)
    {
        int a = 0, b = s.Length;
        while (a < b && IsPySpace(s[a])) a++;
        while (b > a && IsPySpace(s[b - 1])) b--;
        return a == 0 && b == s.Length ? s : s[a..b];
    }

    /// <summary><c>regex.sub(r'\s+', ' ', s).strip()</c>: CLIP's <c>whitespace_clean</c>.</summary>
    public static string WhitespaceClean(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool inSpace = false;
        foreach (char c in s)
        {
            if (IsRegexSpace(c)) { if (!inSpace) sb.Append(' '); inSpace = true; }
            else { sb.Append(c); inSpace = false; }
        }
        return Strip(sb.ToString());
    }

    /// <summary><c>" ".join(s.split())</c>: runs of <see cref="IsPySpace"/> characters become one space, none at either end
    /// (open_clip's <c>whitespace_clean</c>; unlike the regex module's <c>\s</c>, <c>str.split()</c> also splits at U+001C–U+001F).</summary>
    public static string SplitJoin(string s)
    {
        int first = 0;
        while (first < s.Length && IsPySpace(s[first])) first++;
        bool clean = true;
        for (int i = first; i < s.Length && clean; i++)
            if (IsPySpace(s[i]) && (s[i] != ' ' || i + 1 == s.Length || IsPySpace(s[i + 1]))) clean = false;
        if (clean) return first == 0 ? s : s[first..];
        var sb = new StringBuilder(s.Length);
        bool pending = false;
        for (int i = first; i < s.Length; i++)
        {
            if (IsPySpace(s[i])) { pending = true; continue; }
            if (pending) { sb.Append(' '); pending = false; }
            sb.Append(s[i]);
        }
        return sb.ToString();
    }

    /// <summary>
    /// Python's <c>str.lower()</c>: the full lower-case mapping (U+0130 İ becomes "i̇", two code points) and the
    /// Final_Sigma rule (Σ becomes ς at the end of a word), neither of which <see cref="string.ToLowerInvariant"/> does.
    /// </summary>
    public static string Lower(string s)
    {
        // Fast path: ASCII only.
        if (Ascii.IsValid(s))
        {
            if (s.AsSpan().IndexOfAnyInRange('A', 'Z') < 0) return s;
            return string.Create(s.Length, s, static (dst, src) => Ascii.ToLower(src, dst, out _));
        }
        var sb = new StringBuilder(s.Length);
        Span<char> buf = stackalloc char[2];
        for (int i = 0; i < s.Length;)
        {
            if (Rune.DecodeFromUtf16(s.AsSpan(i), out var r, out int n) != System.Buffers.OperationStatus.Done)
            {
                sb.Append(s[i]); i++; continue; // an unpaired surrogate stays as it is
            }
            if (r.Value == 0x130) sb.Append("i\u0307");
            else if (r.Value == 0x3A3) sb.Append(IsFinalSigma(s, i) ? '\u03C2' : '\u03C3');
            else
            {
                var lower = Rune.ToLowerInvariant(r);
                sb.Append(buf[..lower.EncodeToUtf16(buf)]);
            }
            i += n;
        }
        return sb.ToString();
    }

    /// <summary>CPython's <c>handle_capital_sigma</c>: \p{cased} \p{case-ignorable}* Σ !(\p{case-ignorable}* \p{cased}).</summary>
    static bool IsFinalSigma(string s, int i)
    {
        int j = i;
        int c = -1;
        while (j > 0)
        {
            j = PrevIndex(s, j);
            c = CodePointAt(s, j);
            if (!IsCaseIgnorable(c)) break;
            c = -1;
        }
        if (c < 0 || !IsCased(c)) return false;
        for (int k = i + 1; k < s.Length;)
        {
            int d = CodePointAt(s, k);
            if (!IsCaseIgnorable(d)) return !IsCased(d);
            k += d > 0xFFFF ? 2 : 1;
        }
        return true;
    }

    static int PrevIndex(string s, int j) =>
        j >= 2 && char.IsLowSurrogate(s[j - 1]) && char.IsHighSurrogate(s[j - 2]) ? j - 2 : j - 1;

    static int CodePointAt(string s, int j) =>
        char.IsHighSurrogate(s[j]) && j + 1 < s.Length && char.IsLowSurrogate(s[j + 1]) ? char.ConvertToUtf32(s[j], s[j + 1]) : s[j];

    /// <summary>Unicode's Cased property: Lu, Ll, Lt, Other_Lowercase, Other_Uppercase.</summary>
    internal static bool IsCased(int c)
    {
        var cat = CharUnicodeInfo.GetUnicodeCategory(c);
        if (cat is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter) return true;
        return c is 0xAA or 0xBA or (>= 0x2B0 and <= 0x2B8) or 0x2C0 or 0x2C1 or (>= 0x2E0 and <= 0x2E4) or 0x345 or 0x37A
            or 0x10FC or (>= 0x1D2C and <= 0x1D6A) or 0x1D78 or (>= 0x1D9B and <= 0x1DBF) or 0x2071 or 0x207F
            or (>= 0x2090 and <= 0x209C) or (>= 0x2160 and <= 0x217F) or (>= 0x24B6 and <= 0x24E9) or 0x2C7C or 0x2C7D
            or 0xA69C or 0xA69D or 0xA770 or (>= 0xA7F2 and <= 0xA7F4) or 0xA7F8 or 0xA7F9 or (>= 0xAB5C and <= 0xAB5F) or 0xAB69
            or 0x10780 or (>= 0x10783 and <= 0x10785) or (>= 0x10787 and <= 0x107B0) or (>= 0x107B2 and <= 0x107BA)
            or (>= 0x1E030 and <= 0x1E06D) or (>= 0x1F130 and <= 0x1F149) or (>= 0x1F150 and <= 0x1F169) or (>= 0x1F170 and <= 0x1F189);
    }

    /// <summary>Unicode's Case_Ignorable property: Mn, Me, Cf, Lm, Sk, and Word_Break MidLetter, MidNumLet or Single_Quote.</summary>
    internal static bool IsCaseIgnorable(int c)
    {
        var cat = CharUnicodeInfo.GetUnicodeCategory(c);
        if (cat is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format
            or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol) return true;
        return c is 0x27 or 0x2E or 0x3A or 0xB7 or 0x387 or 0x55F or 0x5F4 or 0x2018 or 0x2019 or 0x2024 or 0x2027
            or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A;
    }
}
