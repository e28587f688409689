using System.Buffers;
using System.Text;

namespace ClipGen.Text;

/// <summary>open_clip's text cleaning before a Hugging Face tokenizer (<c>tokenizer_kwargs.clean</c>, the spec's <c>tokenizer.clean</c>).</summary>
public enum TextCleaning
{
    /// <summary><c>_clean_whitespace</c>: <c>whitespace_clean(basic_clean(x))</c>; open_clip's default for HF tokenizers.</summary>
    Whitespace,
    /// <summary><c>_clean_lower</c>: <c>whitespace_clean(basic_clean(x)).lower()</c>.</summary>
    Lower,
    /// <summary><c>_clean_canonicalize</c>: <c>canonicalize_text(basic_clean(x))</c> (SigLIP): '_' to space, ASCII punctuation removed, lower case.</summary>
    Canonicalize,
}

/// <summary>
/// open_clip 2.32's cleaning functions (<c>src/open_clip/tokenizer.py</c>), with Python's string semantics:
/// <list type="bullet">
/// <item><c>basic_clean</c> = <c>html.unescape(html.unescape(ftfy.fix_text(x))).strip()</c>, the same first step as OpenAI's
/// tokenizer (<see cref="ClipTextCleaner"/>), with ftfy approximated by <see cref="FtfyLite"/>;</item>
/// <item><c>whitespace_clean</c> = <c>" ".join(x.split()).strip()</c> (<c>str.split()</c>, not OpenAI's <c>re.sub(r'\s+', ' ')</c>);</item>
/// <item><c>canonicalize_text</c> (from big_vision) = <c>x.replace("_", " ")</c>, then <c>string.punctuation</c> removed, <c>lower()</c>,
/// <c>" ".join(x.split()).strip()</c>.</item>
/// </list>
/// </summary>
public static class OpenClipCleaner
{
    /// <summary>Python's <c>string.punctuation</c>.</summary>
    public const string AsciiPunctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    static readonly SearchValues<char> Punctuation = SearchValues.Create(AsciiPunctuation);

    /// <summary>The spec's name of a cleaning ("canonicalize", "lower", "whitespace"; empty means open_clip's default, whitespace).</summary>
    public static TextCleaning Parse(string name) => name switch
    {
        "" or "whitespace" => TextCleaning.Whitespace,
        "lower" => TextCleaning.Lower,
        "canonicalize" => TextCleaning.Canonicalize,
        _ => throw new ClipGenException($"unknown text cleaning '{name}'; known: canonicalize, lower, whitespace"),
    };

    /// <summary>The spec's name of <paramref name="cleaning"/>.</summary>
    public static string Name(TextCleaning cleaning) => cleaning switch
    {
        TextCleaning.Lower => "lower",
        TextCleaning.Canonicalize => "canonicalize",
        _ => "whitespace",
    };

    /// <summary>open_clip's <c>get_clean_fn(name)(text)</c>.</summary>
    public static string Clean(string text, TextCleaning cleaning)
    {
        ArgumentNullException.ThrowIfNull(text);
        var basic = BasicClean(text);
        return cleaning switch
        {
            TextCleaning.Canonicalize => Canonicalize(basic),
            TextCleaning.Lower => PythonUnicode.Lower(PythonUnicode.SplitJoin(basic)),
            _ => PythonUnicode.SplitJoin(basic),
        };
    }

    /// <summary><c>basic_clean</c>: <c>ftfy.fix_text</c>, <c>html.unescape</c> twice, <c>strip()</c>.</summary>
    public static string BasicClean(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var s = FtfyLite.Fix(text);
        s = PythonHtml.Unescape(PythonHtml.Unescape(s));
        return PythonUnicode.Strip(s);
    }

    /// <summary>big_vision's <c>canonicalize_text</c> (without <c>keep_punctuation_exact_string</c>, which open_clip never passes).</summary>
    public static string Canonicalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text;
        if (s.AsSpan().IndexOfAny(Punctuation) >= 0)
        {
            var sb = new StringBuilder(s.Length);
            foreach (char c in s)
            {
                if (c == '_') sb.Append(' ');               // text.replace("_", " ") comes first
                else if (!Punctuation.Contains(c)) sb.Append(c);
            }
            s = sb.ToString();
        }
        return PythonUnicode.SplitJoin(PythonUnicode.Lower(s));
    }
}
