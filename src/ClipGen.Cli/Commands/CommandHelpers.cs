namespace ClipGen.Cli.Commands;

/// <summary>Helpers shared by commands.</summary>
static class CommandHelpers
{
    public static string Invariant(double v) => v.ToString("G6", System.Globalization.CultureInfo.InvariantCulture);
}
