using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Server;
using Microsoft.AspNetCore.Builder;

namespace Engram.Benchmarks.Store;

/// <summary>
/// The real Engram host (<see cref="ServerApplication.Build"/>) on Kestrel on a free loopback port,
/// over a fresh data folder, with an HTTP client. Client and server share this machine's cores.
/// </summary>
public sealed class InProcessServer : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new(EngramJson.Options) { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private readonly WebApplication _app;
    private readonly BenchDataFolder _folder;

    private InProcessServer(WebApplication app, BenchDataFolder folder, Uri baseAddress)
    {
        _app = app;
        _folder = folder;
        Client = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            BaseAddress = baseAddress,
            Timeout = TimeSpan.FromMinutes(2),
        };
    }

    public HttpClient Client { get; }

    /// <summary>The host's services (e.g. to create an API key in its store).</summary>
    public IServiceProvider Services => _app.Services;

    public static async Task<InProcessServer> StartAsync(string dataRoot, Action<EngramServerOptions>? configure = null)
    {
        var folder = new BenchDataFolder(dataRoot);
        var url = $"http://127.0.0.1:{FreePort()}";
        // Per-request info logging would measure the console, not Engram.
        var app = ServerApplication.Build(["--Logging:LogLevel:Default=Warning"], o =>
        {
            o.DataPath = folder.Path;
            // One client far above any per-client limit: limits so high they never refuse, so the limiter's cost is still measured.
            o.RateLimit = new() { PermitsPerSecond = 1_000_000, Burst = int.MaxValue, MaxConcurrentRequests = 100_000 };
            configure?.Invoke(o);
        }, urls: url);
        await app.StartAsync();
        return new InProcessServer(app, folder, new Uri(url));
    }

    /// <summary>POST /v1/memories; returns the new id.</summary>
    public async Task<string> CreateAsync(NewMemory memory)
    {
        using var response = await Client.PostAsJsonAsync("/v1/memories", memory, Json);
        if (response.StatusCode != HttpStatusCode.Created)
        {
            throw new InvalidOperationException($"POST /v1/memories answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
        using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
        return body.RootElement.GetProperty("id").GetString()!;
    }

    /// <summary>POST /v1/memories/batch; returns the ids created.</summary>
    public async Task<IReadOnlyList<string>> CreateBatchAsync(IReadOnlyList<NewMemory?> items)
    {
        using var response = await Client.PostAsJsonAsync("/v1/memories/batch", new { items }, Json);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            throw new InvalidOperationException($"POST /v1/memories/batch answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
        using var body = JsonDocument.Parse(await response.Content.ReadAsStreamAsync());
        return body.RootElement.GetProperty("results").EnumerateArray()
            .Where(r => r.GetProperty("status").GetString() == BatchItemResult.Created)
            .Select(r => r.GetProperty("id").GetString()!)
            .ToList();
    }

    /// <summary>GET /v1/memories/{id}, reading the whole body as a client would.</summary>
    public async Task GetAsync(string id)
    {
        using var response = await Client.GetAsync($"/v1/memories/{id}");
        var body = await response.Content.ReadAsByteArrayAsync();
        if (response.StatusCode != HttpStatusCode.OK || body.Length == 0)
        {
            throw new InvalidOperationException($"GET /v1/memories/{id} answered {(int)response.StatusCode}");
        }
    }

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _folder.Dispose();
    }
}
