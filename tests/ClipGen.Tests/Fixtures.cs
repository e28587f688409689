namespace ClipGen.Tests;

/// <summary>Locates the shared reference fixtures: $CLIPGEN_FIXTURES, else ../shared/fixtures beside the repository.</summary>
public static class Fixtures
{
    public static string Root { get; } = Locate();

    static string Locate()
    {
        var env = Environment.GetEnvironmentVariable("CLIPGEN_FIXTURES");
        if (!string.IsNullOrEmpty(env)) return Path.GetFullPath(env);
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ClipGen.sln")))
                return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared", "fixtures"));
            dir = dir.Parent;
        }
        throw new InvalidOperationException("cannot find the repository root (ClipGen.sln) above " + AppContext.BaseDirectory);
    }

    public static string Path_(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>The repository root (the folder holding ClipGen.sln).</summary>
    public static string RepoRoot { get; } = FindRepo();

    static string FindRepo()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "ClipGen.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }
}
