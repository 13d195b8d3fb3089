using System.Text.Json;
using System.Threading.Channels;
using Engram.Server.Operations;
using Engram.Tests.Support;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Engram.Tests.Operations;

/// <summary>
/// The memory warning webhook end to end: a real Kestrel listener on loopback receives the JSON POSTs the monitor sends
/// through the outbound policy, one per crossing of 85 % (and of 95 %), in order, with a post when usage is back under.
/// </summary>
public sealed class MemoryWebhookTests
{
    [Fact]
    public async Task Webhook_GetsOnePostPerCrossing_AndOneWhenBackUnder()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        // A 1 MB budget: any working set is far above it, so the first sample (at start) crosses 85 % and 95 % at once.
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Memory.BudgetMB = 1;
            o.Memory.WarningWebhook = receiver.Url;
            o.Memory.SampleIntervalMilliseconds = 60_000; // the samples below are the test's own
        });
        var monitor = server.Services.GetRequiredService<MemoryMonitor>();

        var shedding = await receiver.NextAsync();
        shedding.GetProperty("event").GetString().Should().Be("memory_shedding");
        shedding.GetProperty("budget_bytes").GetInt64().Should().Be(1024 * 1024);
        shedding.GetProperty("working_set_bytes").GetInt64().Should().BeGreaterThan(1024 * 1024);
        shedding.GetProperty("ratio").GetDouble().Should().BeGreaterThan(MemoryMonitor.ShedRatio);
        shedding.TryGetProperty("at", out _).Should().BeTrue();
        for (var i = 0; i < 5; i++)
        {
            monitor.Sample().Shedding.Should().BeTrue(); // still over: no new post (the next post received must be the recovery)
        }

        MemoryBudget At(double ratio) => new((long)(MemoryMonitor.WorkingSet() / ratio), "test");
        monitor.Budget = At(0.3);
        monitor.Sample().Warning.Should().BeFalse();
        monitor.Sample();
        (await receiver.NextAsync()).GetProperty("event").GetString().Should().Be("memory_recovered");

        // Between 85 % and 95 %: a warning, once however many samples see it.
        monitor.Budget = At(0.9);
        var warned = monitor.Sample();
        warned.Warning.Should().BeTrue();
        warned.Shedding.Should().BeFalse();
        for (var i = 0; i < 5; i++)
        {
            monitor.Sample();
        }
        var warning = await receiver.NextAsync();
        warning.GetProperty("event").GetString().Should().Be("memory_warning");
        warning.GetProperty("ratio").GetDouble().Should().BeInRange(MemoryMonitor.WarnRatio, MemoryMonitor.ShedRatio);

        monitor.Budget = At(0.3);
        monitor.Sample().Warning.Should().BeFalse();
        monitor.Sample();
        var resolved = await receiver.NextAsync();
        resolved.GetProperty("event").GetString().Should().Be("memory_resolved");
        resolved.GetProperty("ratio").GetDouble().Should().BeLessThan(MemoryMonitor.WarnRatio);

        // The next crossing posts again: once per crossing, not once per server.
        monitor.Budget = At(0.9);
        monitor.Sample();
        monitor.Budget = At(0.3);
        monitor.Sample();
        (await receiver.NextAsync()).GetProperty("event").GetString().Should().Be("memory_warning");
        (await receiver.NextAsync()).GetProperty("event").GetString().Should().Be("memory_resolved");
        monitor.WebhookPending.Should().Be(0);
        receiver.Received.Should().Be(6, "shedding, recovered, warning, resolved, warning, resolved: nothing per sample");
        receiver.ContentTypes.Should().OnlyContain(t => t.StartsWith("application/json", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Webhook_ThatIsDown_IsLoggedAndTheMonitorGoesOn()
    {
        // Nothing listens on this port: the post fails, the sample does not.
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Memory.BudgetMB = 1;
            o.Memory.WarningWebhook = $"http://127.0.0.1:{EngramServer.FreePort()}/hook";
            o.Memory.SampleIntervalMilliseconds = 60_000;
        });
        var monitor = server.Services.GetRequiredService<MemoryMonitor>();
        monitor.Sample().Shedding.Should().BeTrue();
        monitor.Budget = new MemoryBudget(1L << 40, "test");
        monitor.Sample().Shedding.Should().BeFalse();
        (await server.PostJsonAsync("/v1/memories", """{"content":"accepted"}""")).StatusCode.Should().Be(System.Net.HttpStatusCode.Created);
    }

    /// <summary>A loopback Kestrel endpoint that keeps every JSON body POSTed to /hook, in arrival order.</summary>
    private sealed class WebhookReceiver : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly Channel<JsonElement> _posts = Channel.CreateUnbounded<JsonElement>();
        private readonly List<string> _contentTypes = [];
        private int _received;

        private WebhookReceiver(WebApplication app) => _app = app;

        public string Url { get; private set; } = "";

        public int Received => Volatile.Read(ref _received);

        public IReadOnlyList<string> ContentTypes
        {
            get
            {
                lock (_contentTypes)
                {
                    return [.. _contentTypes];
                }
            }
        }

        public static async Task<WebhookReceiver> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var receiver = new WebhookReceiver(app);
            app.MapPost("/hook", async (HttpContext http) =>
            {
                using var body = await JsonDocument.ParseAsync(http.Request.Body);
                lock (receiver._contentTypes)
                {
                    receiver._contentTypes.Add(http.Request.ContentType ?? "");
                }
                Interlocked.Increment(ref receiver._received);
                await receiver._posts.Writer.WriteAsync(body.RootElement.Clone());
                return Results.NoContent();
            });
            await app.StartAsync();
            receiver.Url = app.Urls.Single().TrimEnd('/') + "/hook";
            return receiver;
        }

        /// <summary>The next post (in the order the monitor sent them: one sender, one at a time).</summary>
        public async Task<JsonElement> NextAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            return await _posts.Reader.ReadAsync(timeout.Token);
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
