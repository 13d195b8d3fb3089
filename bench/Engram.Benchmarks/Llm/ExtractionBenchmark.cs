using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Engram.Benchmarks.Store;
using Engram.Core.Llm;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Engram.Benchmarks.Llm;

/// <summary>
/// Extraction with a fake OpenAI-compatible model that takes a fixed time per call (default 300 ms): the latency a caller
/// sees for POST /v1/memories with messages (queued: no model time in it), and extraction jobs per second with N workers
/// (each job: one call for the facts, and one for the decisions once similar memories exist).
/// </summary>
public static class ExtractionBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var jobs = Flag(args, "--jobs", 200);
        var workers = Flag(args, "--workers", 4);
        var modelMs = Flag(args, "--model-ms", 300);
        var dataRoot = args.SkipWhile(a => a != "--data-root").Skip(1).FirstOrDefault() ?? Path.GetTempPath();

        await using var model = await FakeModel.StartAsync(TimeSpan.FromMilliseconds(modelMs));
        await using var server = await InProcessServer.StartAsync(dataRoot, o =>
        {
            o.Llm.BaseUrl = model.BaseUrl;
            o.Llm.Model = "fake";
            o.Llm.ExtractionWorkers = workers;
            o.Llm.MaxConcurrency = Math.Max(4, workers);
        });
        var extractor = server.Services.GetRequiredService<ConversationExtractor>();

        // Warm-up (JIT, connections), not measured: one job through to the end.
        await PostAsync(server.Client, "warm-up: I live in Berlin", "warmup");
        while (await extractor.Jobs.CountPendingExtractionJobsAsync(null) > 0)
        {
            await Task.Delay(50);
        }
        model.Calls = 0;

        var ticks = new List<long>(jobs);
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < jobs; i++)
        {
            var start = Stopwatch.GetTimestamp();
            await PostAsync(server.Client, $"I am user {i} and my favourite number is {i}", $"user-{i % 20}");
            ticks.Add(Stopwatch.GetTimestamp() - start);
        }
        var enqueued = Stopwatch.GetElapsedTime(started);
        while (await extractor.Jobs.CountPendingExtractionJobsAsync(null) > 0)
        {
            await Task.Delay(20);
        }
        var drained = Stopwatch.GetElapsedTime(started);

        var add = new LatencyStats(ticks);
        Console.WriteLine($"# llm-extract: fake model at {modelMs} ms per call, {workers} workers, {jobs} conversations ({MachineInfo.BuildConfiguration})");
        Console.WriteLine();
        Console.WriteLine("| measure | value |");
        Console.WriteLine("|---|---:|");
        Console.WriteLine($"| add with infer (POST /v1/memories, messages) p50 | {add.Percentile(50):F2} ms |");
        Console.WriteLine($"| add with infer p95 | {add.Percentile(95):F2} ms |");
        Console.WriteLine($"| add with infer p99 | {add.Percentile(99):F2} ms |");
        Console.WriteLine($"| {jobs} adds queued in | {enqueued.TotalSeconds:F2} s |");
        Console.WriteLine($"| all {jobs} jobs done in | {drained.TotalSeconds:F2} s |");
        Console.WriteLine($"| extraction jobs per second | {jobs / drained.TotalSeconds:F2} |");
        Console.WriteLine($"| model calls | {model.Calls} ({(double)model.Calls / jobs:F2} per job) |");
        Console.WriteLine($"| ceiling ({workers} workers x 1000/{modelMs} ms / calls per job) | {workers * 1000.0 / modelMs / ((double)model.Calls / jobs):F2} jobs/s |");
        return 0;
    }

    private static async Task PostAsync(HttpClient client, string text, string userId)
    {
        var body = JsonSerializer.Serialize(new { messages = new[] { new { role = "user", content = text } }, user_id = userId });
        using var response = await client.PostAsync("/v1/memories", new StringContent(body, Encoding.UTF8, "application/json"));
        if (response.StatusCode != HttpStatusCode.Accepted)
        {
            throw new InvalidOperationException($"POST /v1/memories answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    private static int Flag(string[] args, string name, int fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture) : fallback;
    }

    /// <summary>An OpenAI-compatible chat endpoint answering every call after a fixed delay: facts, or no decisions (all ADD).</summary>
    private sealed class FakeModel : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private long _calls;

        private FakeModel(WebApplication app, string baseUrl)
        {
            _app = app;
            BaseUrl = baseUrl;
        }

        public string BaseUrl { get; }

        public long Calls
        {
            get => Interlocked.Read(ref _calls);
            set => Interlocked.Exchange(ref _calls, value);
        }

        public static async Task<FakeModel> StartAsync(TimeSpan delay)
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            var port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var model = new FakeModel(app, $"http://127.0.0.1:{port}/v1");
            app.MapPost("/v1/chat/completions", async context =>
            {
                using var request = await JsonDocument.ParseAsync(context.Request.Body);
                var text = string.Join("\n", request.RootElement.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("content").ToString()));
                Interlocked.Increment(ref model._calls);
                await Task.Delay(delay);
                var content = text.Contains("keep a memory store current", StringComparison.Ordinal)
                    ? """{"decisions":[]}"""
                    : JsonSerializer.Serialize(new { facts = new[] { new { text = "Said: " + text[(text.LastIndexOf("user: ", StringComparison.Ordinal) + 6)..].Trim(), importance = 0.5 } } });
                context.Response.ContentType = "application/json";
                await context.Response.WriteAsync(JsonSerializer.Serialize(new
                {
                    id = "chatcmpl-bench",
                    @object = "chat.completion",
                    created = 0,
                    model = "fake",
                    choices = new[] { new { index = 0, message = new { role = "assistant", content }, finish_reason = "stop" } },
                    usage = new { prompt_tokens = 1, completion_tokens = 1, total_tokens = 2 },
                }));
            });
            await app.StartAsync();
            return model;
        }

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}
