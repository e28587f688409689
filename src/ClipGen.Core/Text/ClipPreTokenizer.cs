using System.Globalization;

namespace ClipGen.Text;

/// <summary>What a piece of cleaned text is.</summary>
enum PieceKind : byte { Normal, StartOfText, EndOfText }

/// <summary>
/// A hand-written equivalent of CLIP's pre-tokenising pattern, run with the Python <c>regex</c> module and IGNORECASE:
/// <c>&lt;\|startoftext\|&gt;|&lt;\|endoftext\|&gt;|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+</c>.
/// It works on code points (a .NET <see cref="System.Text.RegularExpressions.Regex"/> sees UTF-16 code units, so an astral
/// letter would be two non-letters) and tries the alternatives in order at each position, as the regex does. Details of
/// the reference it reproduces: IGNORECASE lets U+017F ſ match 's' (so "'ſ" is a contraction and "&lt;|ſtartoftext|&gt;" one
/// piece, though not the special token); U+0345 (which case-folds to ι) matches no alternative and is dropped; <c>\s</c> is
/// Unicode White_Space.
/// </summary>
ref struct ClipPreTokenizer
{
    enum Cls : byte { Letter, Number, Space, Other }

    static readonly Cls[] AsciiClass = BuildAscii();

    static Cls[] BuildAscii()
    {
        var t = new Cls[128];
        for (int c = 0; c < 128; c++)
            t[c] = char.IsAsciiLetter((char)c) ? Cls.Letter
                : char.IsAsciiDigit((char)c) ? Cls.Number
                : PythonUnicode.IsRegexSpace(c) ? Cls.Space : Cls.Other;
        return t;
    }

    readonly ReadOnlySpan<char> _s;
    int _pos;

    public ClipPreTokenizer(ReadOnlySpan<char> cleaned) { _s = cleaned; _pos = 0; }

    /// <summary>The next piece as (start, length, kind); false at the end.</summary>
    public bool Next(out int start, out int length, out PieceKind kind)
    {
        var s = _s;
        int i = _pos;
        while (i < s.Length)
        {
            char c = s[i];
            if (c == '<')
            {
                int m = MatchSpecial(s[i..], "<|startoftext|>", out bool exact);
                var k = PieceKind.StartOfText;
                if (m == 0) { m = MatchSpecial(s[i..], "<|endoftext|>", out exact); k = PieceKind.EndOfText; }
                if (m > 0) return Emit(i, m, exact ? k : PieceKind.Normal, out start, out length, out kind);
            }
            else if (c == '\'')
            {
                int m = MatchContraction(s, i);
                if (m > 0) return Emit(i, m, PieceKind.Normal, out start, out length, out kind);
            }
            var cls = ClassAt(s, i, out int w);
            switch (cls)
            {
                case Cls.Space:
                    i += w;
                    continue;
                case Cls.Number:
                    return Emit(i, w, PieceKind.Normal, out start, out length, out kind);
                default:
                    int j = i + w;
                    while (j < s.Length && ClassAt(s, j, out int w2) == cls) j += w2;
                    return Emit(i, j - i, PieceKind.Normal, out start, out length, out kind);
            }
        }
        _pos = i;
        start = length = 0;
        kind = PieceKind.Normal;
        return false;
    }

    bool Emit(int i, int len, PieceKind k, out int start, out int length, out PieceKind kind)
    {
        start = i; length = len; kind = k; _pos = i + len;
        return true;
    }

    /// <summary>Case-insensitive match of a special token's spelling (as the regex's IGNORECASE does); 0 if none.</summary>
    static int MatchSpecial(ReadOnlySpan<char> s, string special, out bool exact)
    {
        exact = false;
        if (s.Length < special.Length) return 0;
        bool same = true;
        for (int k = 0; k < special.Length; k++)
        {
            char a = s[k], b = special[k];
            if (a == b) continue;
            same = false;
            if (char.IsAsciiLetter(b) && (a | 0x20) == b) continue;
            if (b == 's' && a == '\u017F') continue;
            return 0;
        }
        exact = same;
        return special.Length;
    }

    /// <summary>'s 't 're 've 'm 'll 'd (case-insensitive; ſ counts as s); returns the length or 0.</summary>
    static int MatchContraction(ReadOnlySpan<char> s, int i)
    {
        if (i + 1 >= s.Length) return 0;
        char a = s[i + 1];
        char la = (char)(a | 0x20);
        if (a == '\u017F' || (char.IsAsciiLetter(a) && la is 's' or 't' or 'm' or 'd')) return 2;
        if (i + 2 >= s.Length || !char.IsAsciiLetter(a)) return 0;
        char b = s[i + 2];
        if (!char.IsAsciiLetter(b)) return 0;
        char lb = (char)(b | 0x20);
        return (la, lb) is ('r', 'e') or ('v', 'e') or ('l', 'l') ? 3 : 0;
    }

    static Cls ClassAt(ReadOnlySpan<char> s, int i, out int width)
    {
        char c = s[i];
        if (c < 128) { width = 1; return AsciiClass[c]; }
        int cp = c;
        width = 1;
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            cp = char.ConvertToUtf32(c, s[i + 1]);
            width = 2;
        }
        else if (char.IsSurrogate(c)) return Cls.Other; // cannot occur after cleaning; kept total
        if (PythonUnicode.IsRegexSpace(cp) || cp == 0x345) return Cls.Space;
        switch (CharUnicodeInfo.GetUnicodeCategory(cp))
        {
            case UnicodeCategory.UppercaseLetter:
            case UnicodeCategory.LowercaseLetter:
            case UnicodeCategory.TitlecaseLetter:
            case UnicodeCategory.ModifierLetter:
            case UnicodeCategory.OtherLetter:
                return Cls.Letter;
            case UnicodeCategory.DecimalDigitNumber:
            case UnicodeCategory.LetterNumber:
            case UnicodeCategory.OtherNumber:
                return Cls.Number;
            default:
                return Cls.Other;
        }
    }

    /// <summary>All pieces of a cleaned string, for tests and diagnostics.</summary>
    internal static List<string> Split(string cleaned)
    {
        var list = new List<string>();
        var p = new ClipPreTokenizer(cleaned);
        while (p.Next(out int st, out int len, out _)) list.Add(cleaned.Substring(st, len));
        return list;
    }
}
