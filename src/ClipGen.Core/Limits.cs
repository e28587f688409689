using System.Globalization;

namespace ClipGen;

/// <summary>
/// The defaults of ClipGen's input limits, in one place (docs/limits.md lists each with its reason). Each can be raised by
/// an environment variable, read once per process, and most also by an options property of the reader that applies it.
/// The limits are derived from the input's real size where one exists (bytes on disk, compressed sizes, declared sizes),
/// so that what a file makes ClipGen do is bounded by what it is.
/// </summary>
public static class Limits
{
    /// <summary>
    /// The most threads one option may ask for (<c>TorchThreads</c>, <c>IntraOpNumThreads</c>, <c>ConcurrentRuns</c>, loader threads):
    /// 4 per logical processor, at least 16. More only adds switching. <c>CLIPGEN_MAX_THREADS</c> raises it.
    /// </summary>
    public static int MaxThreads { get; } = FromEnvironment("CLIPGEN_MAX_THREADS", Math.Max(16, 4 * Environment.ProcessorCount));

    /// <summary>The default <c>PreprocessOptions.MaxFileBytes</c>: 256 MiB, or <c>CLIPGEN_MAX_IMAGE_BYTES</c>.</summary>
    public static long MaxImageFileBytes { get; } = FromEnvironment("CLIPGEN_MAX_IMAGE_BYTES", 256L << 20);

    /// <summary>
    /// The largest model ClipGen builds, in bytes of float32 weights: the memory this process may use (the GC's view of physical
    /// memory or the container's limit), or <c>CLIPGEN_MAX_MODEL_BYTES</c>. A spec planning more is refused before anything is allocated.
    /// </summary>
    public static long MaxModelBytes => FromEnvironment("CLIPGEN_MAX_MODEL_BYTES", GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);

    /// <summary>The largest spec file read at run time: 4 MiB (published specs are about 1 KiB), or <c>CLIPGEN_MAX_SPEC_BYTES</c>.</summary>
    public static long MaxSpecFileBytes { get; } = FromEnvironment("CLIPGEN_MAX_SPEC_BYTES", 4L << 20);

    /// <summary>Throws when <paramref name="value"/> (named <paramref name="what"/>) is below <paramref name="min"/> or above <see cref="MaxThreads"/>.</summary>
    public static int CheckThreads(int value, string what, int min = 1)
    {
        if (value < min || value > MaxThreads)
            throw new ClipGenException($"{what} must be between {min} and {MaxThreads} (4 per processor; CLIPGEN_MAX_THREADS raises it), not {value}");
        return value;
    }

    /// <summary>A whole-number limit from an environment variable, or <paramref name="fallback"/> when it is unset or not a positive number.</summary>
    internal static long FromEnvironment(string name, long fallback)
    {
        var text = Environment.GetEnvironmentVariable(name);
        return text is not null && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : fallback;
    }

    internal static int FromEnvironment(string name, int fallback) => (int)Math.Min(int.MaxValue, FromEnvironment(name, (long)fallback));
}
