namespace ClipGen.Cli;

/// <summary>The CLI's words for a library error.</summary>
static class CliErrorHints
{
    public static string ForCli(Exception e) => e.Message;
}
