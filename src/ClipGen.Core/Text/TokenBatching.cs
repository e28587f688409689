namespace ClipGen.Text;

/// <summary>Padding and truncation, shared by every <see cref="ITextTokenizer"/>.</summary>
public static class TokenBatching
{
    /// <summary>Rows per parallel work item; smaller batches are encoded on the calling thread.</summary>
    const int ParallelChunk = 64;

    /// <summary>
    /// <paramref name="ids"/> cut to <paramref name="contextLength"/> with <paramref name="endId"/> last, as
    /// <c>clip.tokenize(truncate=True)</c> does (<c>tokens[:ctx]; tokens[-1] = eot</c>); the same array when it fits.
    /// </summary>
    public static int[] Truncate(int[] ids, int contextLength, int endId)
    {
        ArgumentNullException.ThrowIfNull(ids);
        CheckContextLength(contextLength);
        if (ids.Length <= contextLength) return ids;
        var cut = ids[..contextLength];
        cut[^1] = endId;
        return cut;
    }

    internal static void CheckContextLength(int contextLength)
    {
        if (contextLength < 2)
            throw new ClipGenException($"context length {contextLength} is too small: it must hold the start and end tokens (at least 2; CLIP uses 77)");
    }

    internal static long[] EncodeBatch(ITextTokenizer tok, IReadOnlyList<string> texts, int contextLength, TruncationMode mode, out int[] truncatedRows)
    {
        ArgumentNullException.ThrowIfNull(texts);
        CheckContextLength(contextLength);
        int n = texts.Count;
        for (int i = 0; i < n; i++)
            if (texts[i] is null) throw new ArgumentException($"text {i} is null", nameof(texts));
        var result = new long[(long)n * contextLength];
        if (tok.PadId != 0) result.AsSpan().Fill(tok.PadId);
        var counts = new int[n];

        void Row(int i)
        {
            var ids = tok.Encode(texts[i]);
            counts[i] = ids.Length;
            if (ids.Length > contextLength && mode == TruncationMode.Error) return;
            var row = result.AsSpan(i * contextLength, contextLength);
            int m = Math.Min(ids.Length, contextLength);
            for (int k = 0; k < m; k++) row[k] = ids[k];
            if (ids.Length > contextLength) row[^1] = tok.EndId;
        }

        if (n >= 2 * ParallelChunk && Environment.ProcessorCount > 1)
            Parallel.For(0, (n + ParallelChunk - 1) / ParallelChunk, c =>
            {
                int end = Math.Min(n, (c + 1) * ParallelChunk);
                for (int i = c * ParallelChunk; i < end; i++) Row(i);
            });
        else
            for (int i = 0; i < n; i++) Row(i);

        var cut = new List<int>();
        for (int i = 0; i < n; i++)
        {
            if (counts[i] <= contextLength) continue;
            if (mode == TruncationMode.Error)
                throw new ClipGenException(
                    $"text {i} (\"{Shorten(texts[i])}\") has {counts[i]} tokens, more than the context length {contextLength} " +
                    "(the start and end tokens count); shorten it or allow truncation");
            cut.Add(i);
        }
        truncatedRows = [.. cut];
        return result;
    }

    /// <summary>A text fit for a one-line message: at most 40 characters, line breaks shown as spaces.</summary>
    public static string Shorten(string text)
    {
        var s = text.ReplaceLineEndings(" ");
        if (s.Length <= 40) return s;
        int cut = char.IsHighSurrogate(s[36]) ? 36 : 37;
        return s[..cut] + "...";
    }
}
