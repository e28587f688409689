using Microsoft.Extensions.Logging;

namespace ClipGen.Cli;

/// <summary>
/// The CLI's <see cref="ILogger"/>: each message the library logs (Information and up) becomes one line on a writer
/// (stderr), as it is, with control characters escaped; no categories or timestamps, so that a terminal reads like before.
/// </summary>
public sealed class LineLogger(TextWriter writer, LogLevel minimum = LogLevel.Information) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum && logLevel != LogLevel.None;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel)) return;
        ArgumentNullException.ThrowIfNull(formatter);
        var line = ErrorText.Message(formatter(state, exception));
        lock (writer) writer.WriteLine(line);
    }
}
