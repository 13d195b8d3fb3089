using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Engram.Benchmarks.Mcp;
using Engram.Benchmarks.Retrieval;
using Engram.Benchmarks.Store;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using static Engram.Benchmarks.BenchArgs;

namespace Engram.Benchmarks.Llm;

/// <summary>
/// <c>llm-chat</c>: what chat with memory adds to the model's own time. A fake OpenAI-compatible model answers every call
/// after a fixed <c>--model-ms</c> (default 300 ms) and records how long each call took on its side; Engram serves a store
/// of <c>--count</c> memories (default 100k, the corpus the <c>mcp</c> benchmark caches). Sequential calls of
/// <c>POST /v1/chat</c> (plain and streamed) and the proxy <c>POST /v1/chat/completions</c>, each with a generated query;
/// the overhead of a call is the time the client saw minus the time the model spent on it (recall, prompt, two HTTP hops).
/// </summary>
public static class ChatBenchmark
{
    private const int Seed = 20261202;

    public static async Task<int> RunAsync(string[] args)
    {
        var count = Flag(args, "--count", 100_000);
        var requests = Flag(args, "--requests", 200);
        var modelMs = Flag(args, "--model-ms", 300);
        var dataRoot = Option(args, "--data-root") ?? BenchDataFolder.DefaultRoot;
        Directory.CreateDirectory(dataRoot);
        Console.WriteLine("Engram chat-with-memory benchmark (llm-chat)");
        foreach (var line in MachineInfo.Describe(dataRoot))
        {
            Console.WriteLine(line);
        }
        var corpus = new CorpusGenerator(Vocabulary.Load(), Seed);
        var folder = await McpBenchFolder.EnsureAsync(dataRoot, corpus, count, Seed);
        var queries = QueryGenerator.Generate(corpus, count, Math.Max(requests, 50), Seed).Select(q => string.Join(' ', q)).ToList();
        var scratch = McpBenchFolder.CopyToScratch(folder, dataRoot);
        try
        {
            await using var model = await FixedDelayModel.StartAsync(TimeSpan.FromMilliseconds(modelMs));
            await using var server = await E2eServer.StartAsync(scratch, configure: o =>
            {
                o.Llm.BaseUrl = model.BaseUrl;
                o.Llm.Model = "bench";
                o.Llm.MaxConcurrency = 16;
                // The cached store holds the built-in (GloVe) vectors it was loaded with: the same embedder, no re-embedding.
                o.Embeddings.Provider = Engram.Core.Embeddings.EmbeddingSettings.Builtin;
            });
            // Measured on the whole index: the server loads its snapshot and catches up in the background after start.
            var stats = await server.StatsAsync();
            for (var waited = 0; !stats.CaughtUp && waited < 600; waited++)
            {
                await Task.Delay(500);
                stats = await server.StatsAsync();
            }
            Console.WriteLine(Invariant($"store   : {stats.Documents:N0} memories indexed ({stats.PendingEmbeddings:N0} waiting for a vector); fake model: {modelMs} ms a call; {requests} sequential calls per route after 20 warm-up calls"));
            Console.WriteLine("| route | p50 total ms | p50 overhead ms | p95 overhead ms | p99 overhead ms | max overhead ms |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|");
            foreach (var (name, send) in new (string, Func<string, Task>)[]
            {
                ("POST /v1/chat (k 5)", q => PostAsync(server.Client, "/v1/chat", new { messages = new[] { new { role = "user", content = q } }, k = 5 })),
                ("POST /v1/chat (k 5, lens valence)", q => PostAsync(server.Client, "/v1/chat", new { messages = new[] { new { role = "user", content = q } }, k = 5, lens = "valence" })),
                ("POST /v1/chat (stream)", q => PostAsync(server.Client, "/v1/chat", new { messages = new[] { new { role = "user", content = q } }, k = 5, stream = true })),
                ("POST /v1/chat/completions (proxy)", q => PostAsync(server.Client, "/v1/chat/completions", new { model = "gpt-4o", messages = new[] { new { role = "user", content = q } } })),
            })
            {
                for (var i = 0; i < 20; i++)
                {
                    await send(queries[i % queries.Count]);
                }
                model.Spent.Clear();
                var totals = new List<double>();
                var overheads = new List<double>();
                for (var i = 0; i < requests; i++)
                {
                    var started = Stopwatch.GetTimestamp();
                    await send(queries[i % queries.Count]);
                    var total = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    if (!model.Spent.TryDequeue(out var spent))
                    {
                        throw new InvalidOperationException("the model was not called");
                    }
                    totals.Add(total);
                    overheads.Add(total - spent);
                }
                totals.Sort();
                overheads.Sort();
                Console.WriteLine(Invariant($"| {name} | {P(totals, 0.5):0.0} | {P(overheads, 0.5):0.00} | {P(overheads, 0.95):0.00} | {P(overheads, 0.99):0.00} | {overheads[^1]:0.00} |"));
            }
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
        return 0;
    }

    private static async Task PostAsync(HttpClient client, string path, object body)
    {
        using var response = await client.PostAsJsonAsync(path, body);
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode || text.Length == 0)
        {
            throw new InvalidOperationException($"{path} answered {(int)response.StatusCode}: {text}");
        }
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    /// <summary>An OpenAI-compatible endpoint that answers after a fixed delay and records each call's time on its side (body read to answer written).</summary>
    private sealed class FixedDelayModel : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private FixedDelayModel(WebApplication app, string baseUrl)
        {
            _app = app;
            BaseUrl = baseUrl;
        }

        public string BaseUrl { get; }

        public ConcurrentQueue<double> Spent { get; } = new();

        public static async Task<FixedDelayModel> StartAsync(TimeSpan delay)
        {
            var port = InProcessServer.FreePort();
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
            builder.Logging.ClearProviders();
            var app = builder.Build();
            var model = new FixedDelayModel(app, $"http://127.0.0.1:{port}/v1");
            app.MapPost("/v1/chat/completions", async context =>
            {
                var started = Stopwatch.GetTimestamp();
                using var request = await JsonDocument.ParseAsync(context.Request.Body);
                var stream = request.RootElement.TryGetProperty("stream", out var s) && s.ValueKind == JsonValueKind.True;
                await Task.Delay(delay);
                if (stream)
                {
                    context.Response.ContentType = "text/event-stream";
                    var text = new StringBuilder();
                    foreach (var piece in new[] { "The answer ", "uses the ", "memories." })
                    {
                        text.Append("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"")
                            .Append(piece).Append("\"},\"finish_reason\":null}]}\n\n");
                    }
                    text.Append("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
                    await context.Response.WriteAsync(text.ToString());
                }
                else
                {
                    context.Response.ContentType = "application/json";
                    await context.Response.WriteAsync("{\"id\":\"c\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"bench\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"The answer uses the memories.\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":6,\"total_tokens\":106}}");
                }
                model.Spent.Enqueue(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            });
            await app.StartAsync();
            return model;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
