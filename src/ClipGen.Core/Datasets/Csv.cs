using System.Text;

namespace ClipGen.Datasets;

/// <summary>A small RFC 4180 CSV reader: quoted fields, doubled quotes, newlines inside quotes; any one-character separator (comma, tab).</summary>
public static class Csv
{
    /// <summary>Reads one record, or null at the end. <paramref name="line"/> counts the physical lines read.</summary>
    public static List<string>? ReadRecord(TextReader reader, ref int line, char separator = ',')
    {
        var first = reader.ReadLine();
        if (first is null) return null;
        line++;
        var fields = new List<string>();
        var sb = new StringBuilder();
        var text = first;
        int i = 0;
        bool inQuotes = false, wasQuoted = false;
        while (true)
        {
            if (i >= text.Length)
            {
                if (!inQuotes) { fields.Add(sb.ToString()); return fields; }
                var next = reader.ReadLine();
                if (next is null) throw new FormatException("unterminated quoted field");
                line++;
                sb.Append('\n');
                text = next; i = 0;
                continue;
            }
            char c = text[i];
            if (inQuotes)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"') { sb.Append('"'); i += 2; continue; }
                    inQuotes = false; i++;
                    if (i < text.Length && text[i] != separator) throw new FormatException($"a quoted field must be followed by '{(separator == '\t' ? "\\t" : separator.ToString())}' or the end of the line");
                    continue;
                }
                sb.Append(c); i++;
                continue;
            }
            if (c == separator) { fields.Add(sb.ToString()); sb.Clear(); wasQuoted = false; i++; continue; }
            if (c == '"' && sb.Length == 0 && !wasQuoted) { inQuotes = true; wasQuoted = true; i++; continue; }
            sb.Append(c); i++;
        }
    }
}
