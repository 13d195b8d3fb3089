using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization;
using Engram.Benchmarks.Store;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// The real Engram host (<see cref="ServerApplication.Build"/>, default settings: builtin embedder,
/// exact vector index) on a free loopback port over a given data folder, which it leaves in place on
/// stop so a second server can start cold on the same store.
/// </summary>
public sealed class E2eServer : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(EngramJson.Options) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly WebApplication _app;

    private E2eServer(WebApplication app, Uri baseAddress)
    {
        _app = app;
        Engine = app.Services.GetRequiredService<EngramEngine>();
        Client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            BaseAddress = baseAddress,
            Timeout = TimeSpan.FromMinutes(10),
        };
    }

    public HttpClient Client { get; }

    /// <summary>The server's services (the alerts bench reaches the memory monitor through them).</summary>
    public IServiceProvider Services => _app.Services;

    /// <summary>The server's own engine (from its DI container), for in-process searches.</summary>
    public EngramEngine Engine { get; }

    /// <param name="snapshots">Off: the indexes are always rebuilt from the store and no snapshot is read or written.</param>
    /// <param name="configure">Further settings (the embedder, the vector quantization), applied last.</param>
    public static async Task<E2eServer> StartAsync(string dataPath, bool snapshots = true, Action<EngramServerOptions>? configure = null)
    {
        var url = $"http://127.0.0.1:{InProcessServer.FreePort()}";
        // Per-request info logging would measure the console, not Engram.
        var app = ServerApplication.Build(["--Logging:LogLevel:Default=Warning"], o =>
        {
            o.DataPath = dataPath;
            o.IndexSnapshots = snapshots;
            // One client far above any per-client limit: limits so high they never refuse, so the limiter's cost is still measured.
            o.RateLimit = new() { PermitsPerSecond = 1_000_000, Burst = int.MaxValue, MaxConcurrentRequests = 100_000 };
            configure?.Invoke(o);
        }, urls: url);
        await app.StartAsync();
        return new E2eServer(app, new Uri(url));
    }

    /// <summary>POST /v1/memories/batch; returns how many were created (not folded into an existing duplicate).</summary>
    public async Task<int> CreateBatchAsync(IReadOnlyList<NewMemory?> items)
    {
        using var response = await Client.PostAsJsonAsync("/v1/memories/batch", new { items }, Json);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"POST /v1/memories/batch answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
        using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
        return body.RootElement.GetProperty("results").EnumerateArray().Count(r => r.GetProperty("status").GetString() == BatchItemResult.Created);
    }

    /// <summary>GET /v1/stats: the store's last sequence number and how far the index has applied it.</summary>
    public async Task<IndexProgress> StatsAsync()
    {
        using var response = await Client.GetAsync("/v1/stats");
        response.EnsureSuccessStatusCode();
        using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
        var root = body.RootElement;
        var index = root.GetProperty("index");
        return new IndexProgress(root.GetProperty("last_seq").GetInt64(), index.GetProperty("applied_seq").GetInt64(),
            index.GetProperty("pending_embeddings").GetInt32(), index.GetProperty("documents").GetInt32());
    }

    /// <summary>POST /v1/search, reading the whole body as a client would.</summary>
    public async Task SearchHttpAsync(SearchRequest request)
    {
        using var response = await Client.PostAsJsonAsync("/v1/search", request, Json);
        var body = await response.Content.ReadAsByteArrayAsync();
        if (response.StatusCode != HttpStatusCode.OK || body.Length == 0)
        {
            throw new InvalidOperationException($"POST /v1/search answered {(int)response.StatusCode}: {System.Text.Encoding.UTF8.GetString(body)}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

public readonly record struct IndexProgress(long LastSeq, long AppliedSeq, int PendingEmbeddings, int Documents)
{
    public bool CaughtUp => AppliedSeq == LastSeq && PendingEmbeddings == 0;
}
