

namespace ClipGen.Text;

/// <summary>What <see cref="ITextTokenizer.EncodeBatch(IReadOnlyList{string}, int, TruncationMode)"/> does with a text longer than the context.</summary>
public enum TruncationMode
{
    /// <summary>Keep the first <c>contextLength</c> ids and make the last one the end token, as <c>clip.tokenize(truncate=True)</c>.</summary>
    Truncate,
    /// <summary>Throw a <see cref="ClipGenException"/> naming the text and its token count.</summary>
    Error,
}

/// <summary>A text tokenizer for CLIP text towers. Implementations are immutable and safe to call from many threads.</summary>
public interface ITextTokenizer
{
    /// <summary>The factory kind ("clip_bpe", "bytes", "sentencepiece", "wordpiece").</summary>
    string Kind { get; }
    /// <summary>Id of the start token, first in every encoded text; null for a kind that puts none (sentencepiece).</summary>
    int? StartId { get; }
    /// <summary>
    /// Id of the end token, last in every encoded text; CLIP pools the text features at its position. For wordpiece with
    /// <c>strip_sep_token</c> it is 0, the id that replaces [SEP].
    /// </summary>
    int EndId { get; }
    /// <summary>Id used to pad rows in <see cref="EncodeBatch(IReadOnlyList{string}, int, TruncationMode)"/>.</summary>
    int PadId { get; }
    /// <summary>Number of ids (the size of the token embedding table).</summary>
    int VocabSize { get; }

    /// <summary>The ids of one cleaned text with the start (if any) and end tokens, not padded and not truncated.</summary>
    int[] Encode(string text);

    /// <summary>Ids of many texts as a row-major [texts.Count, contextLength] array, padded with <see cref="PadId"/>.</summary>
    long[] EncodeBatch(IReadOnlyList<string> texts, int contextLength, TruncationMode mode = TruncationMode.Truncate);

    /// <summary>As <see cref="EncodeBatch(IReadOnlyList{string}, int, TruncationMode)"/>, and reports the rows that were cut (ascending).</summary>
    long[] EncodeBatch(IReadOnlyList<string> texts, int contextLength, TruncationMode mode, out int[] truncatedRows);

    /// <summary>The text of some ids; with <paramref name="skipSpecialTokens"/> the start and end tokens are left out.</summary>
    string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);
}

/// <summary>
/// What every tokenizer kind shares: batches are <see cref="TokenBatching"/> over the kind's own <see cref="Encode"/>
/// (padding with <see cref="PadId"/>, cutting with <see cref="EndId"/> last).
/// </summary>
public abstract class TextTokenizerBase : ITextTokenizer
{
    private protected TextTokenizerBase() { }

    public abstract string Kind { get; }
    public abstract int? StartId { get; }
    public abstract int EndId { get; }
    public abstract int PadId { get; }
    public abstract int VocabSize { get; }
    public abstract int[] Encode(string text);
    public abstract string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false);

    public long[] EncodeBatch(IReadOnlyList<string> texts, int contextLength, TruncationMode mode = TruncationMode.Truncate) =>
        TokenBatching.EncodeBatch(this, texts, contextLength, mode, out _);

    public long[] EncodeBatch(IReadOnlyList<string> texts, int contextLength, TruncationMode mode, out int[] truncatedRows) =>
        TokenBatching.EncodeBatch(this, texts, contextLength, mode, out truncatedRows);
}
