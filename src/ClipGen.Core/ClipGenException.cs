namespace ClipGen;

/// <summary>
/// An error caused by the user's input (a spec, a checkpoint, an image, a CSV, an argument).
/// Its message is one line that names the file, key, line or value at fault; the CLI prints it and exits with code 2.
/// The message is passed through <see cref="ErrorText.Message"/>: control characters escaped, overlong text shortened.
/// The message speaks of the library's own settings, never of a front end's (no command-line flags): <see cref="Setting"/>
/// says which setting would fix the error, and a front end names it in its own words.
/// </summary>
public class ClipGenException : Exception
{
    public ClipGenException(string message) : base(ErrorText.Message(message)) { }
    public ClipGenException(string message, Exception inner) : base(ErrorText.Message(message), inner) { }

    /// <summary>The setting whose value would fix the error, if one would (for a CLI to name its option).</summary>
    public ClipGenSetting Setting { get; init; }
}

/// <summary>The user-facing settings that a <see cref="ClipGenException"/> can point at.</summary>
public enum ClipGenSetting
{
    /// <summary>No single setting: the input itself is at fault.</summary>
    None,
    /// <summary>The tokenizer's vocabulary file (the <c>vocab</c> argument of the loaders, or <c>CLIPGEN_VOCAB</c>).</summary>
    Vocabulary,
    /// <summary>The model: a compiled-in spec's name or alias (<c>ModelRegistry.All</c>), or a spec file.</summary>
    Model,
    /// <summary>The image and caption columns of a CSV or parquet list.</summary>
    ListColumns,
}
