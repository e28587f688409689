using System.Globalization;
using System.Text;

namespace ClipGen;

/// <summary>
/// Makes text safe to print in a one-line error: control characters (and the bidirectional overrides that reorder a
/// terminal line) are escaped, and overlong text is shortened in the middle. Every <see cref="ClipGenException"/> message
/// goes through <see cref="Message"/>, and the command-line tool prints every error through it; values taken from the input
/// (file names, keys, arguments) can be quoted with <see cref="Value"/> so that one long value does not crowd out the reason.
/// </summary>
public static class ErrorText
{
    /// <summary>The longest message printed whole; a longer one keeps its start and end (docs/limits.md).</summary>
    public const int MaxMessageChars = 2000;

    /// <summary>The longest value quoted whole by <see cref="Value"/>.</summary>
    public const int MaxValueChars = 200;

    /// <summary>One line: line breaks and tabs become spaces, other control characters are escaped, and the text is shortened to <see cref="MaxMessageChars"/>.</summary>
    public static string Message(string? text) => Shorten(Escape(text ?? "", lineBreaksAsSpaces: true), MaxMessageChars);

    /// <summary>A value from the input, for quoting inside a message: every control character escaped, shortened to <see cref="MaxValueChars"/>.</summary>
    public static string Value(string? text) => Shorten(Escape(text ?? "", lineBreaksAsSpaces: false), MaxValueChars);

    static string Escape(string text, bool lineBreaksAsSpaces)
    {
        int i = 0;
        while (i < text.Length && !NeedsEscape(text[i])) i++;
        if (i == text.Length) return text;
        var sb = new StringBuilder(text.Length + 16);
        sb.Append(text, 0, i);
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (!NeedsEscape(c)) { sb.Append(c); continue; }
            if (lineBreaksAsSpaces && c is '\n' or '\r' or '\t')
            {
                if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
                sb.Append(' ');
                continue;
            }
            sb.Append(c switch
            {
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                _ when c <= 0xFF => "\\x" + ((int)c).ToString("x2", CultureInfo.InvariantCulture),
                _ => "\\u" + ((int)c).ToString("x4", CultureInfo.InvariantCulture),
            });
        }
        return sb.ToString();
    }

    /// <summary>C0 and C1 controls, DEL, the line/paragraph separators and the bidirectional embeddings, overrides and isolates.</summary>
    static bool NeedsEscape(char c) =>
        c < 0x20 || (c >= 0x7F && c < 0xA0) || c is '\u2028' or '\u2029' || (c >= '\u202A' && c <= '\u202E') || (c >= '\u2066' && c <= '\u2069');

    static string Shorten(string text, int max)
    {
        if (text.Length <= max) return text;
        int head = max * 2 / 3, tail = max - head;
        // Never split a surrogate pair.
        if (char.IsHighSurrogate(text[head - 1])) head--;
        if (char.IsLowSurrogate(text[text.Length - tail])) tail--;
        int omitted = text.Length - head - tail;
        return string.Concat(text.AsSpan(0, head), $" … [{omitted.ToString("N0", CultureInfo.InvariantCulture)} characters omitted] … ", text.AsSpan(text.Length - tail));
    }
}
