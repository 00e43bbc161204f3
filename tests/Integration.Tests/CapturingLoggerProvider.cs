using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace PgOtelGateway.Integration.Tests;

/// <summary>Counts log events by id and keeps their messages, for tests that check something is logged once (not per scrape or request).</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    private readonly ConcurrentDictionary<int, int> _events = new();
    private readonly ConcurrentQueue<string> _messages = new();

    public int Count(int eventId) => _events.GetValueOrDefault(eventId);

    /// <summary>Messages that contain <paramref name="text"/>.</summary>
    public int CountContaining(string text) => _messages.Count(m => m.Contains(text, StringComparison.Ordinal));

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private sealed class Logger(CapturingLoggerProvider owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            owner._events.AddOrUpdate(eventId.Id, 1, (_, n) => n + 1);
            owner._messages.Enqueue(formatter(state, exception));
        }
    }
}
