using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Engram.Tests.Http;

/// <summary>
/// A refused request is an answer, not a server error: 4xx problem bodies must not write error logs
/// with stack traces (an agent polling for a missing key would flood the log).
/// </summary>
public sealed class ErrorLoggingTests
{
    [Fact]
    public async Task ClientErrors_AreAnsweredWithoutErrorLogs()
    {
        await using var server = await EngramServer.StartAsync();
        var captured = new ConcurrentQueue<(string Category, LogLevel Level, string Message)>();
        server.Services.GetRequiredService<ILoggerFactory>().AddProvider(new CapturingProvider(captured));

        await (await server.Client.GetAsync("/v1/kv/missing")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await server.Client.GetAsync("/v1/memories/01J00000000000000000000000")).ShouldBeProblemAsync(HttpStatusCode.NotFound);
        await (await server.Client.PostAsync("/v1/memories", new StringContent("{not json", Encoding.UTF8, "application/json"))).ShouldBeProblemAsync(HttpStatusCode.BadRequest);
        await (await server.Client.PutAsync("/v1/kv/k", new StringContent("""{"value":1,"nx":true,"xx":true}""", Encoding.UTF8, "application/json")))
            .ShouldBeProblemAsync(HttpStatusCode.BadRequest, "nx");

        captured.Where(e => e.Level >= LogLevel.Warning).Should().BeEmpty();

        // The capture itself works: an error logged where server failures are logged is seen.
        server.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Engram.Http").LogError("control");
        captured.Should().Contain(e => e.Category == "Engram.Http" && e.Level == LogLevel.Error && e.Message == "control");
    }

    private sealed class CapturingProvider(ConcurrentQueue<(string, LogLevel, string)> sink) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, sink);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<(string, LogLevel, string)> sink) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                sink.Enqueue((category, logLevel, formatter(state, exception)));
        }
    }
}
