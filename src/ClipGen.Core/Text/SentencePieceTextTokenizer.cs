using MLSentencePiece = Microsoft.ML.Tokenizers.SentencePieceTokenizer;

namespace ClipGen.Text;

/// <summary>
/// The "sentencepiece" kind: SigLIP's T5 layout (unigram model, <c>&lt;pad&gt;</c>=0, <c>&lt;/s&gt;</c>=1, <c>&lt;unk&gt;</c>=2, no
/// start piece) and SigLIP 2's Gemma layout (BPE with byte fallback, <c>&lt;pad&gt;</c>=0, <c>&lt;/s&gt;</c>=1, <c>&lt;s&gt;</c>=2), as
/// open_clip's tokenizer over Hugging Face's T5TokenizerFast / GemmaTokenizerFast uses them: the text is cleaned
/// (<see cref="OpenClipCleaner"/>), encoded without a start token, and the end token is appended. Batches are cut to the
/// context length with the end token kept last and padded with the pad id (SigLIP: 1, the end token; Gemma: 0).
/// The SentencePiece algorithm itself is Microsoft.ML.Tokenizers' <see cref="MLSentencePiece"/>.
/// </summary>
/// <remarks>
/// Microsoft.ML.Tokenizers 2.0.1 cannot load a unigram model without a start-of-text piece (<c>bos_id: -1</c>, the
/// T5/SigLIP layout): its constructor indexes its piece table with the id and throws IndexOutOfRangeException. Such a
/// model is loaded with one CONTROL piece appended and made the start piece (<see cref="SentencePieceModelFile.WithControlStartPiece"/>);
/// control pieces are never matched in text and the start token is never requested, so the ids are unchanged, and the
/// extra id is outside <see cref="VocabSize"/>.
/// </remarks>
public sealed class SentencePieceTextTokenizer : TextTokenizerBase
{
    readonly MLSentencePiece _spm;
    readonly int _unkId;

    public override string Kind => TextTokenizers.SentencePiece;
    /// <summary>None: SigLIP's texts start with the first piece of the text.</summary>
    public override int? StartId => null;
    public override int EndId { get; }
    public override int PadId { get; }
    /// <summary>The number of pieces in the model file.</summary>
    public override int VocabSize { get; }
    /// <summary>The cleaning applied before encoding.</summary>
    public TextCleaning Cleaning { get; }
    /// <summary>True for a BPE model (Gemma), false for a unigram model (T5).</summary>
    public bool IsBpe { get; }
    /// <summary>True when the model file had no start piece and one was added for loading (see the remarks).</summary>
    internal bool AddedStartPiece { get; }

    SentencePieceTextTokenizer(MLSentencePiece spm, SentencePieceModelFile model, TextCleaning cleaning, int endId, int padId, bool addedStart)
    {
        _spm = spm;
        _unkId = model.UnkId;
        VocabSize = model.Pieces.Count;
        IsBpe = model.ModelType == SentencePieceModelFile.ModelKind.Bpe;
        Cleaning = cleaning;
        EndId = endId;
        PadId = padId;
        AddedStartPiece = addedStart;
    }

    /// <summary>
    /// Loads a SentencePiece model file (<c>spiece.model</c>, <c>tokenizer.model</c>). <paramref name="endId"/> (the spec's
    /// <c>text.eos_id</c>) must be the model's end-of-text piece; null takes the model's. <paramref name="padId"/> (the spec's
    /// <c>text.pad_id</c>) may be any id of the model; null takes the model's pad piece, else the end piece.
    /// </summary>
    public static SentencePieceTextTokenizer FromFile(string path, TextCleaning cleaning, int? endId = null, int? padId = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] data;
        try { data = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ClipGenException(File.Exists(path) ? $"cannot read SentencePiece model {path}: {e.Message}" : $"SentencePiece model file not found: {path}", e);
        }
        return FromBytes(data, path, cleaning, endId, padId);
    }

    /// <summary>As <see cref="FromFile"/>, from the file's bytes; <paramref name="source"/> names them in errors.</summary>
    public static SentencePieceTextTokenizer FromBytes(byte[] data, string source, TextCleaning cleaning, int? endId = null, int? padId = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(source);
        var model = SentencePieceModelFile.Parse(data, source);
        if (model.EosId < 0)
            throw new ClipGenException($"{source}: the model has no end-of-text piece (eos_id -1), which this tokenizer appends to every text");
        int end = endId ?? model.EosId;
        if (end != model.EosId)
            throw new ClipGenException($"{source}: the spec's end token id {end} is not the model's end-of-text piece {model.EosId} ('{model.Pieces[model.EosId].Piece}')");
        int pad = padId ?? (model.PadId >= 0 ? model.PadId : model.EosId);
        if (pad < 0 || pad >= model.Pieces.Count)
            throw new ClipGenException($"{source}: the spec's pad id {pad} is outside the model's {model.Pieces.Count} pieces");
        bool addStart = model.BosId < 0;
        var bytes = addStart ? model.WithControlStartPiece(data, out _) : data;
        MLSentencePiece spm;
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            spm = MLSentencePiece.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false, UserDefinedPieces(model));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever the library throws on a model it cannot handle (ArgumentException, IndexOutOfRangeException, ...).
            throw new ClipGenException($"{source}: Microsoft.ML.Tokenizers cannot load this SentencePiece model ({e.GetType().Name}: {e.Message})", e);
        }
        return new SentencePieceTextTokenizer(spm, model, cleaning, end, pad, addStart);
    }

    /// <summary>
    /// The model's USER_DEFINED pieces, longest first. Google's sentencepiece always emits such a piece whole where it occurs;
    /// Microsoft.ML.Tokenizers' BPE model splits them like other text, but matches its "special tokens" first (the
    /// alternation of a .NET regex, which takes the first alternative that matches, hence longest first).
    /// </summary>
    static Dictionary<string, int>? UserDefinedPieces(SentencePieceModelFile model)
    {
        var pieces = model.Pieces.Select((p, id) => (p.Piece, p.Type, Id: id))
            .Where(p => p.Type == SentencePieceModelFile.PieceType.UserDefined && p.Piece.Length > 0)
            .OrderByDescending(p => p.Piece.Length).ThenBy(p => p.Id).ToList();
        if (pieces.Count == 0) return null;
        var d = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in pieces) d.TryAdd(p.Piece, p.Id);
        return d;
    }

    /// <summary>The cleaned text's pieces and the end id; not padded, not truncated.</summary>
    public override int[] Encode(string text) => EncodeCleaned(OpenClipCleaner.Clean(text, Cleaning));

    /// <summary>Encodes text that is already cleaned (what the tokenizer itself sees), with the end id appended.</summary>
    public int[] EncodeCleaned(string cleanedText)
    {
        ArgumentNullException.ThrowIfNull(cleanedText);
        var ids = _spm.EncodeToIds(cleanedText, addBeginningOfSentence: false, addEndOfSentence: false);
        var result = new int[ids.Count + 1];
        int n = 0;
        foreach (int id in ids)
        {
            // Google's unigram model (and Hugging Face's, fuse_unk) merges a run of unknown characters into one <unk>;
            // Microsoft.ML.Tokenizers emits one per character.
            if (id == _unkId && n > 0 && result[n - 1] == _unkId && !IsBpe) continue;
            result[n++] = id;
        }
        result[n++] = EndId;
        return n == result.Length ? result : result[..n];
    }


    /// <summary>SentencePiece's decoding ('▁' back to spaces, byte pieces back to UTF-8). With <paramref name="skipSpecialTokens"/>
    /// the end, pad and other control pieces are left out; otherwise they are written as their piece text.</summary>
    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens = false)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = ids as IReadOnlyCollection<int> ?? ids.ToList();
        foreach (int id in list)
            if ((uint)id >= (uint)VocabSize)
                throw new ClipGenException($"token id {id} is not an id of this SentencePiece model (0..{VocabSize - 1})");
        return _spm.Decode(list, considerSpecialTokens: !skipSpecialTokens);
    }
}
