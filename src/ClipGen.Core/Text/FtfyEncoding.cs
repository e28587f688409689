using System.Text;
using System.Text.RegularExpressions;

namespace ClipGen.Text;

/// <summary>
/// ftfy 6.3.1's <c>fix_encoding</c> (mojibake repair: "cafÃ©" → "café") with its default configuration: while the
/// text is "bad" (ftfy's <c>BADNESS_RE</c>), encode it in the first of ftfy's single-byte encodings that can hold it
/// (Latin-1, its sloppy Windows code pages, ISO-8859-2, MacRoman, CP437), restore byte A0 and mark lossy sequences, and
/// decode the bytes as UTF-8 (with CESU-8 surrogate pairs and Java's C0 80); else decode UTF-8 embedded in other text
/// (<c>decode_inconsistent_utf8</c>), else read Latin-1 as Windows-1252, else map C1 controls. The character tables and
/// the two large patterns are ftfy's and CPython's, in <c>FtfyEncoding.Data.cs</c>.
/// </summary>
static partial class FtfyEncoding
{
    const int Latin1 = 0, MacRoman = 8;

    [GeneratedRegex(BadnessPattern, RegexOptions.CultureInvariant)]
    private static partial Regex Badness();
    [GeneratedRegex(Utf8DetectorPattern, RegexOptions.CultureInvariant)]
    private static partial Regex Utf8Detector();

    // Byte patterns (ftfy's chardata / fixes), run over bytes read as Latin-1 characters.
    const string AlteredUtf8Pattern =
        "[\\xc2\\xc3\\xc5\\xce\\xd0\\xd9][ ]" +
        "|[\\xe2\\xe3][ ][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf]" +
        "|[\\xe0-\\xe3][\\x80-\\x84\\x86-\\x9f\\xa1-\\xbf][ ]" +
        "|[\\xf0][ ][\\x80-\\xbf][\\x80-\\xbf]" +
        "|[\\xf0][\\x80-\\xbf][ ][\\x80-\\xbf]" +
        "|[\\xf0][\\x80-\\xbf][\\x80-\\xbf][ ]";
    [GeneratedRegex(AlteredUtf8Pattern, RegexOptions.CultureInvariant)]
    private static partial Regex AlteredUtf8();

    const string LossyUtf8Pattern =
        "[\\xc2-\\xdf][\\x1a]" +
        "|[\\xc2-\\xc3][?]" +
        "|\\xed[\\xa0-\\xaf][\\x1a?]\\xed[\\xb0-\\xbf][\\x1a?\\x80-\\xbf]" +
        "|\\xed[\\xa0-\\xaf][\\x1a?\\x80-\\xbf]\\xed[\\xb0-\\xbf][\\x1a?]" +
        "|[\\xe0-\\xef][\\x1a?][\\x1a\\x80-\\xbf]" +
        "|[\\xe0-\\xef][\\x1a\\x80-\\xbf][\\x1a?]" +
        "|[\\xf0-\\xf4][\\x1a?][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf]" +
        "|[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a?][\\x1a\\x80-\\xbf]" +
        "|[\\xf0-\\xf4][\\x1a\\x80-\\xbf][\\x1a\\x80-\\xbf][\\x1a?]" +
        "|\\x1a";
    [GeneratedRegex(LossyUtf8Pattern, RegexOptions.CultureInvariant)]
    private static partial Regex LossyUtf8();

    [GeneratedRegex("\\xc3 (?! |quele|quela|quilo|s )", RegexOptions.CultureInvariant)]
    private static partial Regex AGraveWord();

    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Per encoding: character → byte. Built on first use, after <see cref="CharmapTables"/> in the other part
    /// of this class (static initialisers of a partial class run in no defined order across files).</summary>
    static Dictionary<char, byte>[] Encoders => EncoderTables.Value;

    static class EncoderTables
    {
        public static readonly Dictionary<char, byte>[] Value = BuildEncoders();
    }

    static Dictionary<char, byte>[] BuildEncoders()
    {
        var result = new Dictionary<char, byte>[CharmapTables.Length];
        for (int e = 0; e < CharmapTables.Length; e++)
        {
            var map = new Dictionary<char, byte>(256);
            // codecs.charmap_build: the first byte wins when two decode to the same character.
            for (int b = 255; b >= 0; b--) map[CharmapTables[e][b]] = (byte)b;
            result[e] = map;
        }
        return result;
    }

    /// <summary><c>ftfy.badness.is_bad</c>.</summary>
    public static bool IsBad(string text) => Badness().IsMatch(text);

    /// <summary><c>ftfy.fix_encoding(text)</c>: one step at a time until nothing changes.</summary>
    public static string Fix(string text)
    {
        while (true)
        {
            var next = FixOneStep(text);
            if (next == text) return text;
            text = next;
        }
    }

    /// <summary>
    /// ftfy's <c>possible_encoding</c>: every character is ASCII other than U+001A or one that the encoding decodes a
    /// byte 0x80–0xFF or 0x1A to.
    /// </summary>
    static bool CanEncode(string text, int encoding)
    {
        var map = Encoders[encoding];
        var table = CharmapTables[encoding];
        foreach (char c in text)
        {
            if (c < 0x80 && c != '\u001A') continue;
            if (!map.TryGetValue(c, out byte b) || (b < 0x80 && b != 0x1A) || table[b] != c) return false;
        }
        return true;
    }

    static byte[] Encode(string text, int encoding)
    {
        var map = Encoders[encoding];
        var bytes = new byte[text.Length];
        for (int i = 0; i < text.Length; i++) bytes[i] = text[i] < 0x80 && text[i] != '\u001A' ? (byte)text[i] : map[text[i]];
        return bytes;
    }

    static string FixOneStep(string text)
    {
        if (text.Length == 0 || Ascii.IsValid(text) || !IsBad(text)) return text;
        var possible = new List<int>();
        for (int e = 0; e < CharmapTables.Length; e++)
        {
            if (!CanEncode(text, e)) continue;
            possible.Add(e);
            var bytes = Encode(text, e);
            if (e != MacRoman && AlteredUtf8().IsMatch(Latin1String(bytes)))
                bytes = RestoreByteA0(bytes);
            if (CharmapNames[e].StartsWith("sloppy", StringComparison.Ordinal))
                bytes = ReplaceLossySequences(bytes);
            bool variants = bytes.AsSpan().IndexOfAny((byte)0xED, (byte)0xC0) >= 0;
            if ((variants ? TryDecodeUtf8Variants(bytes) : TryDecodeUtf8(bytes)) is { } fixedText)
                return fixedText;
        }

        if (Utf8Detector().IsMatch(text))
        {
            var fixedText = DecodeInconsistentUtf8(text);
            if (fixedText != text) return fixedText;
        }

        // "windows-1252" is never among the candidates (ftfy lists only the sloppy variant), so text that Latin-1 can
        // hold is read as strict Windows-1252 when every byte is defined there.
        if (possible.Contains(Latin1))
        {
            var w = DecodeStrictWindows1252(Encode(text, Latin1));
            if (w is not null && w != text) return w;
        }

        if (text.AsSpan().IndexOfAnyInRange('\u0080', '\u009F') >= 0)
            return FixC1Controls(text);
        return text;
    }

    /// <summary>ftfy's <c>decode_inconsistent_utf8</c>: each UTF-8-looking run that is bad and not the whole text is fixed on its own.</summary>
    static string DecodeInconsistentUtf8(string text) =>
        Utf8Detector().Replace(text, m => m.Length < text.Length && IsBad(m.Value) ? Fix(m.Value) : m.Value);

    /// <summary>ftfy's <c>fix_c1_controls</c>: U+0080–U+009F read as sloppy Windows-1252.</summary>
    public static string FixC1Controls(string text)
    {
        var sb = new StringBuilder(text.Length);
        foreach (char c in text) sb.Append(c is >= '\u0080' and <= '\u009F' ? CharmapTables[1][c] : c);
        return sb.ToString();
    }

    static string? DecodeStrictWindows1252(byte[] bytes)
    {
        var sloppy = CharmapTables[1];
        var chars = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
        {
            byte b = bytes[i];
            if (b is 0x81 or 0x8D or 0x8F or 0x90 or 0x9D) return null; // undefined in Windows-1252: UnicodeDecodeError
            chars[i] = b == 0x1A ? '\u001A' : sloppy[b];
        }
        return new string(chars);
    }

    static string Latin1String(byte[] bytes) => Encoding.Latin1.GetString(bytes);

    static byte[] RestoreByteA0(byte[] bytes)
    {
        var s = AGraveWord().Replace(Latin1String(bytes), "\u00C3\u00A0 ");
        s = AlteredUtf8().Replace(s, m => m.Value.Replace(' ', '\u00A0'));
        return Encoding.Latin1.GetBytes(s);
    }

    static byte[] ReplaceLossySequences(byte[] bytes) =>
        Encoding.Latin1.GetBytes(LossyUtf8().Replace(Latin1String(bytes), "\u00EF\u00BF\u00BD")); // U+FFFD's UTF-8 bytes

    static string? TryDecodeUtf8(byte[] bytes)
    {
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { return null; }
    }

    /// <summary>
    /// ftfy's "utf-8-variants" decoder: strict UTF-8, plus C0 80 (Java's NUL; also C0 followed by a final line feed, as
    /// the Python pattern's <c>$</c> allows) and six-byte CESU-8 surrogate pairs. Null when the bytes do not decode.
    /// </summary>
    static string? TryDecodeUtf8Variants(byte[] bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        int start = 0, i = 0;
        while (i < bytes.Length)
        {
            byte b = bytes[i];
            int rest = bytes.Length - i;
            if (b == 0xC0 && rest >= 2 && (bytes[i + 1] == 0x80 || (rest == 2 && bytes[i + 1] == 0x0A)))
            {
                if (!Flush(i)) return null;
                sb.Append('\0');
                i += 2;
                start = i;
                continue;
            }
            if (b == 0xED && (rest == 1 || bytes[i + 1] >= 0xA0))
            {
                if (!Flush(i)) return null;
                if (rest >= 6 && bytes[i + 1] <= 0xAF && bytes[i + 2] is >= 0x80 and <= 0xBF && bytes[i + 3] == 0xED
                    && bytes[i + 4] is >= 0xB0 and <= 0xBF && bytes[i + 5] is >= 0x80 and <= 0xBF)
                {
                    int cp = ((bytes[i + 1] & 0x0F) << 16) + ((bytes[i + 2] & 0x3F) << 10) + ((bytes[i + 4] & 0x0F) << 6) + (bytes[i + 5] & 0x3F) + 0x10000;
                    sb.Append(char.ConvertFromUtf32(cp));
                    i += 6;
                    start = i;
                    continue;
                }
                return null; // an encoded surrogate that is not half of a pair: strict UTF-8 refuses it
            }
            i++;
        }
        return Flush(bytes.Length) ? sb.ToString() : null;

        bool Flush(int end)
        {
            if (end == start) return true;
            var part = TryDecodeUtf8(bytes[start..end]);
            if (part is null) return false;
            sb.Append(part);
            return true;
        }
    }
}
