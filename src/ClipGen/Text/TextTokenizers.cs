namespace ClipGen.Text;

/// <summary>Creates tokenizers by kind, and finds the vocabulary file.</summary>
public static class TextTokenizers
{
    /// <summary>OpenAI CLIP's byte-level BPE (<see cref="ClipTokenizer"/>); needs a vocabulary.</summary>
    public const string ClipBpe = "clip_bpe";
    /// <summary>UTF-8 bytes (<see cref="BytesTokenizer"/>); needs no file.</summary>
    public const string Bytes = "bytes";
    /// <summary>The environment variable naming the default vocabulary.</summary>
    public const string VocabEnvironmentVariable = "CLIPGEN_VOCAB";

    public static IReadOnlyList<string> Kinds { get; } = [ClipBpe, Bytes];

    static readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<ClipTokenizer>> Loaded = new(StringComparer.Ordinal);

    /// <summary>
    /// A tokenizer of the given kind. For "clip_bpe" the vocabulary is <paramref name="vocabPath"/>, else $CLIPGEN_VOCAB
    /// (see <see cref="ResolveVocabPath"/>); a vocabulary already loaded from the same path is shared.
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
            default:
                throw new ClipGenException($"unknown tokenizer kind '{kind}'; known kinds: {string.Join(", ", Kinds)}");
        }
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
            "no CLIP BPE vocabulary given: pass --vocab FILE or set CLIPGEN_VOCAB to OpenAI's bpe_simple_vocab_16e6.txt.gz " +
            "(from the openai/CLIP repository) or to a Hugging Face vocab.json with merges.txt beside it");
    }
}
