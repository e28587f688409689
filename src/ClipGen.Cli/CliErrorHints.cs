namespace ClipGen.Cli;

/// <summary>
/// The CLI's words for a library error. The library says what to change in its own terms and marks the setting
/// (<see cref="ClipGenException.Setting"/>); the CLI adds the option that sets it.
/// </summary>
static class CliErrorHints
{
    public static string ForCli(Exception e) => e is ClipGenException { Setting: not ClipGenSetting.None } g
        ? $"{e.Message} ({Hint(g.Setting)})"
        : e.Message;

    static string Hint(ClipGenSetting setting) => setting switch
    {
        ClipGenSetting.Vocabulary => "on the command line: --vocab FILE",
        ClipGenSetting.Model => "'clipgen models' lists the compiled-in models",
        ClipGenSetting.ListColumns => "on the command line: --image-column / --caption-column",
        _ => setting.ToString(),
    };
}
