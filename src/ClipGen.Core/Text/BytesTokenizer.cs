using System.Text;

namespace ClipGen.Text;

/// <summary>
/// The "bytes" tokenizer: the UTF-8 bytes of the text, needing no vocabulary file.
/// Ids: 0 is padding, byte <c>b</c> is <c>b + 1</c> (1..256), start = 257, end = 258; vocabulary size 259.
/// The text is not cleaned (no lower-casing, no whitespace folding); unpaired UTF-16 surrogates become U+FFFD's bytes.
/// </summary>
public sealed class BytesTokenizer : TextTokenizerBase
{
    public const int Pad = 0;
    public const int Start = 257;
    public const int End = 258;
    public const int Size = 259;

    public static BytesTokenizer Instance { get; } = new();

    public override string Kind => TextTokenizers.Bytes;
    public override int? StartId => Start;
    public override int EndId => End;
    public override int PadId => Pad;
    public override int VocabSize => Size;

    public override int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int n = Encoding.UTF8.GetByteCount(text);
        var ids = new int[n + 2];
        ids[0] = Start;
        ids[^1] = End;
        if (n <= 1024)
        {
            Span<byte> buf = stackalloc byte[n];
            Encoding.UTF8.GetBytes(text, buf);
            for (int i = 0; i < n; i++) ids[i + 1] = buf[i] + 1;
        }
        else
        {
            var buf = Encoding.UTF8.GetBytes(text);
            for (int i = 0; i < n; i++) ids[i + 1] = buf[i] + 1;
        }
        return ids;
    }


    /// <summary>Bytes back to text (invalid UTF-8 → U+FFFD). Padding is always skipped; the start and end tokens are
    /// written as "&lt;|startoftext|&gt;" and "&lt;|endoftext|&gt;" unless <paramref name="skipSpecialTokens"/>.</summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var sb = new StringBuilder();
        var bytes = new List<byte>();
        void Flush() { if (bytes.Count > 0) { sb.Append(Encoding.UTF8.GetString([.. bytes])); bytes.Clear(); } }
        foreach (int id in ids)
        {
            switch (id)
            {
                case Pad: break;
                case >= 1 and <= 256: bytes.Add((byte)(id - 1)); break;
                case Start or End:
                    if (skipSpecialTokens) break;
                    Flush();
                    sb.Append(id == Start ? ClipTokenizer.StartToken : ClipTokenizer.EndToken);
                    break;
                default: throw new ClipGenException($"token id {id} is not a bytes-tokenizer id (0..{Size - 1})");
            }
        }
        Flush();
        return sb.ToString();
    }
}
