using Spectre.Console;

namespace ClipGen.Cli;

/// <summary>
/// Progress of long work (download, embed, train) as the CLI shows it. The library reports through <see cref="IProgress{T}"/>
/// and callbacks only; here, on an interactive terminal, a Spectre.Console progress bar on stderr; otherwise (stderr redirected,
/// CI, a test's writer, or <c>--quiet</c>) the commands' plain lines, unchanged.
/// </summary>
static class CliProgress
{
    /// <summary>True when <paramref name="stderr"/> is the process's own stderr, a terminal, and not CI.</summary>
    public static bool Interactive(TextWriter stderr) =>
        ReferenceEquals(stderr, Console.Error) && !Console.IsErrorRedirected
        && string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")) && Environment.GetEnvironmentVariable("TERM") is not "dumb";

    /// <summary>Runs <paramref name="work"/> under a live progress display on stderr; <paramref name="work"/> updates the bar.</summary>
    public static T Show<T>(string description, bool bytes, Func<Bar, T> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        ProgressColumn[] columns = bytes
            ? [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn()]
            : [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn()];
        T result = default!;
        console.Progress().AutoClear(false).Columns(columns).Start(ctx =>
        {
            var task = ctx.AddTask(Markup.Escape(description), autoStart: true);
            task.IsIndeterminate = true;
            result = work(new Bar(task));
            if (task.MaxValue > 0 && !task.IsIndeterminate) task.Value = task.MaxValue;
            task.StopTask();
        });
        return result;
    }

    /// <summary>One bar: its value out of a total (unknown totals spin), and a description.</summary>
    public sealed class Bar(ProgressTask task)
    {
        public void Update(double value, double? total, string? description = null)
        {
            if (total is > 0)
            {
                task.IsIndeterminate = false;
                task.MaxValue = total.Value;
                task.Value = Math.Min(value, total.Value);
            }
            if (description is not null) task.Description = Markup.Escape(description);
        }
    }
}
