using System.Diagnostics;
using System.Globalization;
using System.Security;
using System.Text;

namespace ClipGen.Hostile;

/// <summary>Command-line options of the corpus runner.</summary>
sealed record RunnerOptions(string ClipGen, string RepoRoot, string Fixtures, string? Only, string? Trx, bool Keep)
{
    public static RunnerOptions Parse(string[] args)
    {
        string? Get(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
        var repo = global::ClipGen.Tests.Fixtures.RepoRoot;
        // The CLI built in the same configuration as this runner (Debug in CI), unless another one is named (e.g. an older build).
        var config = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)).Parent?.Name ?? "Debug";
        var cli = Get("--clipgen") ?? Path.Combine(repo, "src", "ClipGen.Cli", "bin", config, "net10.0", "ClipGen.Cli.dll");
        if (!File.Exists(cli)) throw new FileNotFoundException($"clipgen not found at {cli}; build the solution first or pass --clipgen");
        return new RunnerOptions(Path.GetFullPath(cli), repo, global::ClipGen.Tests.Fixtures.Root, Get("--only"), Get("--trx"), args.Contains("--keep"));
    }
}

/// <summary>
/// One hostile input: the clipgen arguments, the expected exit code, fragments the error must contain, and the bounds on peak
/// memory and time. <see cref="Check"/> may add checks on the files left behind (null: fine, else why not).
/// </summary>
sealed record Case(string Defect, string Name, string[] Args, int Exit, string[] Fragments, int MaxMB = 1024, double MaxSeconds = 60)
{
    public Func<string?>? Check { get; init; }
    /// <summary>Runs before the command (e.g. starts a server); its result is disposed after.</summary>
    public Func<IDisposable?>? Setup { get; init; }
    /// <summary>A reason to skip the case on this machine, or null.</summary>
    public string? SkipBecause { get; init; }
    /// <summary>Text that must not appear in stderr.</summary>
    public string[] Absent { get; init; } = [];
    /// <summary>The longest stderr line allowed.</summary>
    public int MaxLineLength { get; init; } = 100_000;
}

sealed record CaseResult(Case Case, bool Passed, bool Skipped, int ExitCode, double PeakMB, double Seconds, string Note, string Stderr);

/// <summary>Runs clipgen as a child process, sampling its peak resident memory (VmHWM) and killing it past twice its bounds.</summary>
static class ChildProcess
{
    public static (int Exit, double PeakMB, double Seconds, string Stdout, string Stderr, bool Killed) Run(string dll, string[] args, int maxMB, double maxSeconds, string workDir, string cache)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, WorkingDirectory = workDir, UseShellExecute = false };
        psi.ArgumentList.Add(dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["CLIPGEN_CACHE"] = cache;
        psi.Environment["DOTNET_gcServer"] = "0";
        psi.Environment.Remove("CLIPGEN_DEBUG");
        var clock = Stopwatch.StartNew();
        using var p = Process.Start(psi)!;
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        double peak = 0;
        bool killed = false;
        while (!p.WaitForExit(25))
        {
            peak = Math.Max(peak, PeakMB(p.Id));
            if (peak > 2.0 * maxMB + 512 || clock.Elapsed.TotalSeconds > 2 * maxSeconds + 10)
            {
                killed = true;
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                p.WaitForExit();
                break;
            }
        }
        clock.Stop();
        return (killed ? -9 : p.ExitCode, peak, clock.Elapsed.TotalSeconds, stdout.Result, stderr.Result, killed);
    }

    /// <summary>The process's peak resident set (VmHWM) in MB, 0 once it is gone or where /proc does not exist.</summary>
    static double PeakMB(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                    return long.Parse(line[6..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        return 0;
    }
}

/// <summary>Writes the results as a minimal TRX file, so that .ci/run counts each case as a test.</summary>
static class Trx
{
    public static void Write(string path, IReadOnlyList<CaseResult> results)
    {
        int passed = results.Count(r => r.Passed && !r.Skipped), failed = results.Count(r => !r.Passed && !r.Skipped);
        var sb = new StringBuilder();
        sb.Append("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<TestRun id=\"").Append(Guid.NewGuid()).Append("\" name=\"hostile-corpus\" xmlns=\"http://microsoft.com/schemas/VisualStudio/TeamTest/2010\">\n");
        sb.Append("  <Results>\n");
        foreach (var r in results)
        {
            var outcome = r.Skipped ? "NotExecuted" : r.Passed ? "Passed" : "Failed";
            sb.Append("    <UnitTestResult testName=\"").Append(SecurityElement.Escape($"hostile.{r.Case.Defect}.{r.Case.Name}")).Append("\" outcome=\"").Append(outcome)
              .Append("\" duration=\"").Append(TimeSpan.FromSeconds(r.Seconds).ToString("c", CultureInfo.InvariantCulture)).Append("\">");
            if (!r.Passed && !r.Skipped)
                sb.Append("<Output><ErrorInfo><Message>").Append(SecurityElement.Escape(Clean(r.Note + " | " + r.Stderr))).Append("</Message></ErrorInfo></Output>");
            sb.Append("</UnitTestResult>\n");
        }
        sb.Append("  </Results>\n  <ResultSummary outcome=\"").Append(failed == 0 ? "Completed" : "Failed").Append("\">\n");
        sb.Append(CultureInfo.InvariantCulture, $"    <Counters total=\"{results.Count}\" executed=\"{passed + failed}\" passed=\"{passed}\" failed=\"{failed}\" />\n");
        sb.Append("  </ResultSummary>\n</TestRun>\n");
        File.WriteAllText(path, sb.ToString());
    }

    static string Clean(string s) => new(s.Take(4000).Select(c => char.IsControl(c) && c != '\n' ? ' ' : c).ToArray());
}
