using System.Runtime.InteropServices;

namespace ClipGen;

/// <summary>
/// The process-wide policy of glibc's <c>malloc</c>, which libtorch uses for every CPU tensor.
/// <para>
/// glibc serves each block over 32 MiB with its own <c>mmap</c> and returns it with <c>munmap</c> when freed. A CNN's
/// activations at batch 32 are such blocks (RN50's first stage: 32 × 256 × 56 × 56 floats, 103 MB), so every forward maps
/// fresh pages, and the kernel faults and zeroes each one: on this repository's 2-core test machine, a third of an RN50
/// forward at batch 32 was kernel time, 4.8 M page faults over 4 forwards (docs/benchmarks.md). PyTorch has the same cost
/// under glibc and loses it with jemalloc; .NET's runtime under jemalloc faults more, not less.
/// </para>
/// <para>
/// <see cref="RetainFreedMemory"/> sets glibc's <c>M_MMAP_MAX</c> to 0 (large blocks come from the heap like small ones)
/// and <c>M_TRIM_THRESHOLD</c> to 2 GiB (freed memory stays with the process for the next forward), the same as starting
/// the process with <c>GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647</c>. The cost is
/// memory: the process keeps the peak of its native heap instead of returning it between forwards. It changes how
/// memory is obtained, never a computed value. One limit: glibc's heaps for threads other than the main one end at
/// 64 MiB, so on those threads a larger block is still mapped on its own. The main thread (where <c>clipgen embed</c>,
/// <c>classify</c> and the benchmarks run their forwards) has no such limit; a server whose forwards run on pool threads
/// gets the rest by starting with <c>GLIBC_TUNABLES=glibc.malloc.arena_max=1</c> (one heap for all threads), which only
/// the launcher of a process can set.
/// </para>
/// <para>
/// It is a choice for the program that owns the process: the <c>clipgen</c> command and server make it at start-up (the
/// environment variable <c>CLIPGEN_MALLOC_RETAIN=0</c> turns that off); a library never makes it on its own, so an
/// application that embeds ClipGen calls this itself if it wants the speed.
/// </para>
/// </summary>
public static class NativeHeap
{
    /// <summary>Set to <c>0</c> to keep glibc's defaults in the <c>clipgen</c> process.</summary>
    public const string EnvironmentVariable = "CLIPGEN_MALLOC_RETAIN";

    const int MTrimThreshold = -1, MMmapMax = -4;
    static readonly ProcessSetting Setting = new(EnvironmentVariable, "glibc's malloc", Apply);

    /// <summary>Tells glibc to serve large blocks from its heap and keep freed memory (idempotent). Never throws.</summary>
    public static ProcessSettingState RetainFreedMemory() => Setting.State;

    static ProcessSettingState Apply()
    {
        if (!OperatingSystem.IsLinux()) return new(false, "only done on Linux (glibc)");
        try
        {
            var version = Marshal.PtrToStringAnsi(gnu_get_libc_version()) ?? "?";
            if (mallopt(MMmapMax, 0) != 1 || mallopt(MTrimThreshold, int.MaxValue) != 1)
                return new(false, $"glibc {version} refused mallopt");
            return new(true, $"glibc {version} malloc keeps freed memory (M_MMAP_MAX 0, M_TRIM_THRESHOLD 2 GiB)");
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return new(false, "the C library is not glibc");
        }
    }

    [DllImport("libc")]
    static extern int mallopt(int param, int value);

    [DllImport("libc")]
    static extern nint gnu_get_libc_version();
}
