using ClipGen.Specs;

namespace ClipGen.Text;

/// <summary>Creates tokenizers by kind or from a spec, and finds the vocabulary file.</summary>
public static class TextTokenizers
{
    /// <summary>OpenAI CLIP's byte-level BPE (<see cref="ClipTokenizer"/>); needs a vocabulary.</summary>
    public const string ClipBpe = "clip_bpe";
    /// <summary>UTF-8 bytes (<see cref="BytesTokenizer"/>); needs no file.</summary>
    public const string Bytes = "bytes";
    /// <summary>A SentencePiece model, SigLIP's and SigLIP 2's (<see cref="SentencePieceTextTokenizer"/>); needs the model file.</summary>
    public const string SentencePiece = "sentencepiece";
    /// <summary>BERT's WordPiece, CLIPA's (<see cref="WordPieceTextTokenizer"/>); needs the vocab.txt.</summary>
    public const string WordPiece = "wordpiece";
    /// <summary>The environment variable naming the default vocabulary.</summary>
    public const string VocabEnvironmentVariable = "CLIPGEN_VOCAB";

    public static IReadOnlyList<string> Kinds { get; } = [ClipBpe, Bytes, SentencePiece, WordPiece];

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<ClipTokenizer>> Loaded = new(StringComparer.Ordinal);

    /// <summary>
    /// A tokenizer of a kind that needs nothing from a spec. For "clip_bpe" the vocabulary is <paramref name="vocabPath"/>,
    /// else $CLIPGEN_VOCAB (see <see cref="ResolveVocabPath"/>); a vocabulary already loaded from the same path is shared.
    /// "sentencepiece" and "wordpiece" take their cleaning and ids from a spec, so they are refused here: use
    /// <see cref="Create(ClipSpec, string?)"/> (or <see cref="SentencePieceTextTokenizer.FromFile"/> / <see cref="WordPieceTextTokenizer.FromFile"/>).
    /// </summary>
    public static ITextTokenizer Create(string kind, string? vocabPath = null)
    {
        ArgumentNullException.ThrowIfNull(kind);
        switch (kind)
        {
            case ClipBpe:
                var path = Path.GetFullPath(ResolveVocabPath(vocabPath));
                var lazy = Loaded.GetOrAdd(path, p => new Lazy<ClipTokenizer>(() => ClipTokenizer.FromFile(p)));
                try { return lazy.Value; }
                catch { Loaded.TryRemove(path, out _); throw; }
            case Bytes:
                return BytesTokenizer.Instance;
            case SentencePiece or WordPiece:
                throw new ClipGenException($"the {kind} tokenizer takes its text cleaning and token ids from a model spec; create it from the spec");
            default:
                throw new ClipGenException($"unknown tokenizer kind '{kind}'; known kinds: {string.Join(", ", Kinds)}");
        }
    }

    /// <summary>
    /// The tokenizer <paramref name="spec"/> declares: its kind, file, cleaning and <c>strip_sep_token</c>, with the end and
    /// pad ids of its text section. <paramref name="vocabPath"/> is the vocabulary file, or the folder holding the spec's
    /// <c>tokenizer.file</c>; for "clip_bpe" it may be left out as in <see cref="Create(string, string?)"/>. The tokenizer's
    /// ids must fit the spec's <c>text.vocab_size</c>.
    /// </summary>
    public static ITextTokenizer Create(ClipSpec spec, string? vocabPath = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var t = spec.Tokenizer;
        if (!string.IsNullOrEmpty(vocabPath) && Directory.Exists(vocabPath) && t.File.Length > 0 && t.Kind != ClipBpe)
            vocabPath = Path.Combine(vocabPath, t.File);
        ITextTokenizer tok = t.Kind switch
        {
            SentencePiece => SentencePieceTextTokenizer.FromFile(
                RequireFile(t.Kind, vocabPath, $"the model file '{t.File}' of spec '{spec.Name}'"),
                OpenClipCleaner.Parse(t.Clean), spec.Text.EosId, spec.Text.PadId),
            WordPiece => CreateWordPiece(spec, RequireFile(t.Kind, vocabPath, $"the vocabulary '{t.File}' of spec '{spec.Name}'")),
            ClipBpe or Bytes => Create(t.Kind, vocabPath),
            _ => throw new ClipGenException($"spec '{spec.Name}': unknown tokenizer kind '{t.Kind}'; known kinds: {string.Join(", ", Kinds)}"),
        };
        if (tok.VocabSize > spec.Text.VocabSize)
            throw new ClipGenException($"tokenizer '{tok.Kind}' has {tok.VocabSize} ids but spec '{spec.Name}' embeds only {spec.Text.VocabSize} (text.vocab_size)");
        return tok;
    }

    static WordPieceTextTokenizer CreateWordPiece(ClipSpec spec, string file)
    {
        var tok = WordPieceTextTokenizer.FromFile(file, OpenClipCleaner.Parse(spec.Tokenizer.Clean), spec.Tokenizer.StripSepToken);
        if (tok.PadId != spec.Text.PadId)
            throw new ClipGenException($"{file}: [PAD] is id {tok.PadId}, but spec '{spec.Name}' pads with text.pad_id {spec.Text.PadId}");
        return tok;
    }

    static string RequireFile(string kind, string? path, string what)
    {
        if (string.IsNullOrEmpty(path))
            throw new ClipGenException($"the {kind} tokenizer needs {what}; none was given");
        if (Directory.Exists(path))
            throw new ClipGenException($"{path} is a folder; the {kind} tokenizer needs {what}");
        if (!File.Exists(path))
            throw new ClipGenException($"{kind} vocabulary file not found: {path}");
        return path;
    }

    /// <summary>
    /// The vocabulary to use: <paramref name="explicitPath"/> if given (it must exist), else $CLIPGEN_VOCAB; otherwise a
    /// <see cref="ClipGenException"/> saying how to provide one.
    /// </summary>
    public static string ResolveVocabPath(string? explicitPath)
    {
        if (!string.IsNullOrEmpty(explicitPath))
            return File.Exists(explicitPath) || Directory.Exists(explicitPath) ? explicitPath
                : throw new ClipGenException($"vocabulary file not found: {explicitPath}");
        var env = Environment.GetEnvironmentVariable(VocabEnvironmentVariable);
        if (!string.IsNullOrEmpty(env))
            return File.Exists(env) || Directory.Exists(env) ? env
                : throw new ClipGenException($"vocabulary file not found: {env} (from ${VocabEnvironmentVariable})");
        throw new ClipGenException(
            "no CLIP BPE vocabulary given: give a vocabulary file or set CLIPGEN_VOCAB to OpenAI's bpe_simple_vocab_16e6.txt.gz " +
            "(from the openai/CLIP repository) or to a Hugging Face vocab.json with merges.txt beside it") { Setting = ClipGenSetting.Vocabulary };
    }
}
