using Microsoft.Extensions.Logging;

namespace ClipGen.Tests;

/// <summary>An <see cref="ILogger"/> that keeps every message with its level, for asserting on what the library logs.</summary>
public sealed class ListLogger : ILogger
{
    readonly List<(LogLevel Level, string Message)> _entries = [];

    public IReadOnlyList<(LogLevel Level, string Message)> Entries { get { lock (_entries) return _entries.ToList(); } }

    public IReadOnlyList<string> Messages => Entries.Select(e => e.Message).ToList();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_entries) _entries.Add((logLevel, formatter(state, exception)));
    }
}
