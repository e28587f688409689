namespace ClipGen.Downloads;

/// <summary>Where ClipGen keeps downloaded weights and vocabularies.</summary>
public static class CacheFolders
{
    /// <summary><c>$CLIPGEN_CACHE</c>, else <c>$XDG_CACHE_HOME/clipgen</c>, else <c>~/.cache/clipgen</c> (the XDG default).</summary>
    public static string Default =>
        Environment.GetEnvironmentVariable("CLIPGEN_CACHE") is { Length: > 0 } env ? env
            : Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg && Path.IsPathRooted(xdg) ? Path.Combine(xdg, "clipgen")
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "clipgen");
}
