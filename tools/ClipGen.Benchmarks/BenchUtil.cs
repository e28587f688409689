using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ClipGen.Benchmarks;

/// <summary>Timing helpers: warm up, then report the median of several timed runs.</summary>
public static class BenchUtil
{
    /// <summary>The value after <c>--name</c> in <paramref name="args"/>, or <paramref name="fallback"/>.</summary>
    public static string Option(string[] args, string name, string fallback)
    {
        int i = Array.IndexOf(args, "--" + name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
    }

    public static double MedianSeconds(Action body, int warmup = 1, int runs = 5)
    {
        for (int i = 0; i < warmup; i++) body();
        var times = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            var sw = Stopwatch.StartNew();
            body();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return times[runs / 2];
    }

    /// <summary>The 1, 5 and 15-minute load averages (/proc/loadavg), to print beside numbers from a shared machine.</summary>
    public static string LoadAverage()
    {
        try { return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
    }

    /// <summary>
    /// Removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE from a child's environment, so that OpenBLAS picks its kernels for this
    /// CPU (the workplace sets them on some CPUs for old OpenBLAS builds, and they would pin a slower kernel).
    /// </summary>
    public static ProcessStartInfo WithoutOpenBlasOverrides(ProcessStartInfo psi)
    {
        psi.Environment.Remove("OPENBLAS_CORETYPE");
        psi.Environment.Remove("OPENBLAS_L2_SIZE");
        return psi;
    }

    /// <summary>The repository's root (the folder holding ClipGen.sln above this program), else the current folder.</summary>
    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "ClipGen.sln"))) return d.FullName;
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "ClipGen.sln"))) return d.FullName;
        return Directory.GetCurrentDirectory();
    }

    /// <summary>Peak resident set size of this process so far (VmHWM), in bytes; 0 where /proc is absent.</summary>
    public static long PeakRssBytes()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException) { }
        return 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    struct Timespec { public long Sec; public long Nsec; }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    static extern int ClockGettime(int clock, out Timespec ts);

    /// <summary>This thread's CPU time (CLOCK_THREAD_CPUTIME_ID) on Linux; 0 elsewhere.</summary>
    public static double ThreadCpuSeconds()
    {
        if (!OperatingSystem.IsLinux()) return 0;
        return ClockGettime(3, out var ts) == 0 ? ts.Sec + ts.Nsec * 1e-9 : 0;
    }
}
