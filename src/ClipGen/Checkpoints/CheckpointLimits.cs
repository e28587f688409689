namespace ClipGen.Checkpoints;

/// <summary>
/// Bounds on what a checkpoint file may make the reader do, derived from the file's real size where one exists: a zip entry may
/// expand to at most <see cref="MaxExpansionRatio"/> times its compressed bytes, and a pickle may create at most one object per
/// <see cref="PickleBytesPerObject"/> of its bytes. Defaults come from the environment variables named on each property when they
/// are set (docs/limits.md); pass other values to <see cref="CheckpointReader.Open(string, CheckpointLimits)"/>.
/// </summary>
public sealed record CheckpointLimits
{
    /// <summary>The limits <see cref="CheckpointReader.Open(string)"/> applies.</summary>
    public static CheckpointLimits Default { get; } = new();

    /// <summary>
    /// The largest <c>data.pkl</c> (uncompressed). A CLIP state dict's pickle is under 1 MB (about 130 bytes per tensor).
    /// Default 32 MiB; <c>CLIPGEN_MAX_PICKLE_BYTES</c>.
    /// </summary>
    public long MaxPickleBytes { get; init; } = Limits.FromEnvironment("CLIPGEN_MAX_PICKLE_BYTES", 32L << 20);

    /// <summary>
    /// Pickle bytes per object the unpickler may create (lists, dicts, tuples, strings, numbers), after the first
    /// <see cref="MinPickleObjects"/>. Real checkpoints create one object per 6 bytes or more; a hostile <c>]]]]…</c> one per byte.
    /// Default 2; <c>CLIPGEN_PICKLE_BYTES_PER_OBJECT</c>.
    /// </summary>
    public int PickleBytesPerObject { get; init; } = Limits.FromEnvironment("CLIPGEN_PICKLE_BYTES_PER_OBJECT", 2);

    /// <summary>Objects any pickle may create, whatever its size (default 65,536).</summary>
    public long MinPickleObjects { get; init; } = 65_536;

    /// <summary>
    /// How many times its compressed size a zip entry may expand to (default 100; <c>CLIPGEN_MAX_ZIP_RATIO</c>). <c>torch.save</c>
    /// stores entries uncompressed (ratio 1) and weights deflate by about 1.1; a zip bomb expands by up to 1,000.
    /// </summary>
    public int MaxExpansionRatio { get; init; } = Limits.FromEnvironment("CLIPGEN_MAX_ZIP_RATIO", 100);

    /// <summary>Entries up to this size (default 1 MiB) are not held to <see cref="MaxExpansionRatio"/>.</summary>
    public long ExpansionCheckedAbove { get; init; } = 1L << 20;

    /// <summary>The largest TorchScript code file read for its parameter declarations (default 16 MiB).</summary>
    public long MaxCodeFileBytes { get; init; } = 16L << 20;

    /// <summary>How deeply TorchScript modules may nest (default 256).</summary>
    public int MaxModuleDepth { get; init; } = 256;

    /// <summary>The object budget of a pickle of <paramref name="bytes"/> bytes.</summary>
    public long PickleObjectBudget(long bytes) => MinPickleObjects + bytes / Math.Max(1, PickleBytesPerObject);

    internal void Validate()
    {
        if (MaxPickleBytes < 1 || PickleBytesPerObject < 1 || MinPickleObjects < 1 || MaxExpansionRatio < 1 || ExpansionCheckedAbove < 0 || MaxCodeFileBytes < 0 || MaxModuleDepth < 1)
            throw new ClipGenException($"checkpoint limits must be positive: {this}");
    }
}
