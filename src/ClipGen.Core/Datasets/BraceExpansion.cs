using System.Globalization;
using System.Text;

namespace ClipGen.Datasets;

/// <summary>
/// Brace expansion as WebDataset and the Python <c>braceexpand</c> package do it, for shard lists:
/// <c>shard-{00000..00099}.tar</c> (a numeric range; the width of a bound with a leading zero pads every number),
/// <c>{a,b,c}</c> (alternatives), <c>{1..10..3}</c> (a step), <c>{a..e}</c> (letters), nested and repeated braces,
/// and <c>\{</c> for a literal brace. Braces that match no pattern stay as they are. The result is in expansion order.
/// </summary>
public static class BraceExpansion
{
    /// <summary>Expansions beyond this are refused (a typo such as <c>{0..99999999}</c> is not a shard list).</summary>
    public const int MaxResults = 10_000_000;

    public static IReadOnlyList<string> Expand(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        var result = new List<string>();
        foreach (var s in ExpandCore(pattern, pattern)) result.Add(Unescape(s));
        return result;
    }

    /// <summary>Whether <paramref name="pattern"/> contains a brace group that expands.</summary>
    public static bool HasBraces(string pattern) => FindGroup(pattern, out _, out _, out _);

    static List<string> ExpandCore(string s, string whole)
    {
        if (!FindGroup(s, out int open, out int close, out var alternatives)) return [s];
        var prefix = s[..open];
        var suffix = s[(close + 1)..];
        var tails = ExpandCore(suffix, whole);
        var result = new List<string>();
        foreach (var alt in alternatives)
            foreach (var head in ExpandCore(alt, whole))
                foreach (var tail in tails)
                {
                    if (result.Count >= MaxResults) throw new ClipGenException($"'{Shorten(whole)}' expands to more than {MaxResults:N0} names");
                    result.Add(prefix + head + tail);
                }
        return result;
    }

    /// <summary>The first brace group that expands: a comma list (top-level commas) or a range.</summary>
    static bool FindGroup(string s, out int open, out int close, out List<string> alternatives)
    {
        alternatives = [];
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\') { i++; continue; }
            if (s[i] != '{') continue;
            int depth = 0, j = i;
            var commas = new List<int>();
            for (; j < s.Length; j++)
            {
                if (s[j] == '\\') { j++; continue; }
                if (s[j] == '{') depth++;
                else if (s[j] == '}' && --depth == 0) break;
                else if (s[j] == ',' && depth == 1) commas.Add(j);
            }
            if (j >= s.Length) continue; // unbalanced: literal
            var inner = s[(i + 1)..j];
            if (commas.Count > 0)
            {
                int start = i + 1;
                foreach (var c in commas) { alternatives.Add(s[start..c]); start = c + 1; }
                alternatives.Add(s[start..j]);
            }
            else if (TryRange(inner, out var range)) alternatives = range;
            else continue; // {x} alone is literal, as in braceexpand
            open = i; close = j;
            return true;
        }
        open = close = -1;
        return false;
    }

    static bool TryRange(string inner, out List<string> values)
    {
        values = [];
        var parts = inner.Split("..");
        if (parts.Length is not (2 or 3)) return false;
        int step = 1;
        if (parts.Length == 3 && (!int.TryParse(parts[2], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out step) || step == 0)) return false;
        step = Math.Abs(step);
        if (long.TryParse(parts[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long a)
            && long.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long b))
        {
            bool padded = HasLeadingZero(parts[0]) || HasLeadingZero(parts[1]);
            int width = padded ? Math.Max(parts[0].TrimStart('-').Length, parts[1].TrimStart('-').Length) : 0;
            long count = Math.Abs(b - a) / step + 1;
            if (count > MaxResults) throw new ClipGenException($"the range {{{inner}}} has {count:N0} values, more than {MaxResults:N0}");
            long dir = b >= a ? 1 : -1;
            for (long v = a, n = 0; n < count; v += dir * step, n++)
                values.Add(v < 0 ? "-" + (-v).ToString(CultureInfo.InvariantCulture).PadLeft(width, '0') : v.ToString(CultureInfo.InvariantCulture).PadLeft(width, '0'));
            return true;
        }
        if (parts[0].Length == 1 && parts[1].Length == 1 && char.IsLetter(parts[0][0]) && char.IsLetter(parts[1][0]))
        {
            int x = parts[0][0], y = parts[1][0], dir = y >= x ? 1 : -1;
            for (int c = x; dir > 0 ? c <= y : c >= y; c += dir * step) values.Add(((char)c).ToString());
            return true;
        }
        return false;
    }

    static bool HasLeadingZero(string s)
    {
        var t = s.TrimStart('-');
        return t.Length > 1 && t[0] == '0';
    }

    static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && i + 1 < s.Length && s[i + 1] is '{' or '}' or ',' or '\\') { sb.Append(s[++i]); continue; }
            sb.Append(s[i]);
        }
        return sb.ToString();
    }

    static string Shorten(string s) => s.Length <= 200 ? s : s[..200] + "…";
}
