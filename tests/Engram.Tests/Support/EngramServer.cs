using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Server;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Support;

/// <summary>
/// A real Engram server on Kestrel, on a free loopback port, over a real SQLite file in a temp folder.
/// Tests talk to it over HTTP like any client.
/// </summary>
public sealed class EngramServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TempDirectory? _ownedData;
    private readonly List<HttpClient> _keyClients = [];
    private StoreLocation? _ownedLocation;

    private EngramServer(WebApplication app, string dataPath, TempDirectory? ownedData, Uri baseAddress)
    {
        _app = app;
        _ownedData = ownedData;
        DataPath = dataPath;
        BaseAddress = baseAddress;
        Client = new HttpClient { BaseAddress = baseAddress };
    }

    public string DataPath { get; }

    public Uri BaseAddress { get; }

    public HttpClient Client { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>
    /// The port the RESP endpoint bound. Tests ask for port 0 (<see cref="Resp.RespServerFixture.Configure"/>): a port found
    /// free beforehand could be taken by another test's socket before the server bound it (CI failed once on that).
    /// </summary>
    public int RespPort => Services.GetRequiredService<Server.Resp.RespListener>().Port;

    /// <summary>The memory budget of a test server unless its test sets one: 1 TB.</summary>
    public const int TestProcessBudgetMB = 1024 * 1024;

    /// <param name="dataPath">A data folder, or a postgres:// URL (the server then keeps its own files in a temporary folder).</param>
    public static async Task<EngramServer> StartAsync(string? dataPath = null, Action<EngramServerOptions>? configure = null, TimeProvider? clock = null)
    {
        var postgres = Core.Storage.StoreFactory.IsPostgres(dataPath);
        var owned = dataPath is null || postgres ? new TempDirectory() : null;
        var path = postgres ? owned!.Path : dataPath ?? owned!.Path;
        // A port found free can be taken before Kestrel binds it (another test's server, a client socket's local port):
        // then the server starts again on another one.
        for (var attempt = 1; ; attempt++)
        {
            var url = $"http://127.0.0.1:{FreePort()}";
            var app = ServerApplication.Build([], o =>
            {
                o.DataPath = path;
                o.Store = postgres ? dataPath : null;
                o.Backup.Enabled = false; // no scheduled backups unless a test asks (a fake clock moved by hours would start them)
                // The budget is the process's, and this process hosts every test's servers at once (the whole suite's
                // working set reached 12 GB, the automatic budget on a 24 GB machine, and every server shed writes):
                // a budget no test process reaches, unless a test sets its own.
                o.Memory.BudgetMB = TestProcessBudgetMB;
                // The disk check's 1 GB minimum is for operators; a CI disk has been seen with 287 MB free, and a server
                // whose readiness followed it would answer 503 by the machine, not by the code under test.
                o.Health.MinFreeDiskMB = 1;
                configure?.Invoke(o);
            }, clock, url);
            try
            {
                await app.StartAsync();
                return new EngramServer(app, path, owned, new Uri(url));
            }
            catch (IOException ex) when (attempt < 5 && ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException
                && ex.Message.Contains(url, StringComparison.Ordinal))
            {
                await app.DisposeAsync();
            }
        }
    }

    /// <summary>A server on a fresh store of <paramref name="backend"/> (a PostgreSQL database is dropped with the server).</summary>
    public static async Task<EngramServer> StartAsync(Backend backend, Action<EngramServerOptions>? configure = null, TimeProvider? clock = null)
    {
        if (backend == Backend.Sqlite)
        {
            return await StartAsync(dataPath: null, configure, clock);
        }
        var location = await StoreLocation.CreateAsync(backend);
        try
        {
            var server = await StartAsync(location.Value, configure, clock);
            server._ownedLocation = location;
            return server;
        }
        catch
        {
            location.Dispose();
            throw;
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Any method with an optional JSON body, sent as it is (hostile-input tests send malformed JSON on purpose).</summary>
    public Task<HttpResponseMessage> SendJsonAsync(string method, string path, string? json = null) =>
        Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path)
        {
            Content = json is null ? null : new StringContent(json, Encoding.UTF8, "application/json"),
        });

    public Task<HttpResponseMessage> PostJsonAsync(string path, string json) =>
        Client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));

    public Task<HttpResponseMessage> PatchJsonAsync(string path, string json, string? ifMatch = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Patch, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (ifMatch is not null)
        {
            request.Headers.TryAddWithoutValidation("If-Match", ifMatch);
        }
        return Client.SendAsync(request);
    }

    public async Task<JsonElement> CreateAsync(object body, HttpStatusCode expected = HttpStatusCode.Created)
    {
        var response = await Client.PostAsJsonAsync("/v1/memories", body, EngramJson.Options);
        var json = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(expected, json);
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    /// <summary>POST /v1/search; asserts 200 and a timing, returns the results.</summary>
    public async Task<List<JsonElement>> SearchAsync(object body)
    {
        var response = await PostJsonAsync("/v1/search", JsonSerializer.Serialize(body, EngramJson.Options));
        var json = await response.JsonAsync();
        response.StatusCode.Should().Be(HttpStatusCode.OK, json.ToString());
        json.GetProperty("took_ms").GetDouble().Should().BeGreaterThanOrEqualTo(0);
        return json.GetProperty("results").EnumerateArray().ToList();
    }

    /// <summary>
    /// Auth test support. Creates an API key in the server's own store (as <c>engram keys create</c> would,
    /// effective at once) and returns the plain key. From the first key on, the server is no longer open:
    /// <see cref="Client"/> (no key) gets 401 on every route but /health/live and /health/ready, so talk to it
    /// through <see cref="ClientWithKey"/>. Example:
    /// <code>
    /// var admin = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Admin));
    /// var alice = server.ClientWithKey(await server.CreateKeyAsync("acme", Role.Write, new KeyScope("alice", null)));
    /// var otherTenant = server.ClientWithKey(adminKey, tenant: "globex"); // admin acting for another tenant (X-Engram-Tenant)
    /// </code>
    /// </summary>
    public async Task<string> CreateKeyAsync(string tenant, Role role, KeyScope? scope = null, string? name = null, DateTimeOffset? expiresAt = null)
    {
        var created = await Services.GetRequiredService<ApiKeyService>().CreateAsync(new NewApiKey(tenant, role, scope, name, expiresAt), "test");
        return created.Secret;
    }

    /// <summary>
    /// An HttpClient on this server that sends <paramref name="key"/> as <c>Authorization: Bearer</c> (and
    /// <c>X-Engram-Tenant</c> when <paramref name="tenant"/> is given) with every request; disposed with the server.
    /// </summary>
    public HttpClient ClientWithKey(string key, string? tenant = null)
    {
        var client = new HttpClient { BaseAddress = BaseAddress };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (tenant is not null)
        {
            client.DefaultRequestHeaders.Add("X-Engram-Tenant", tenant);
        }
        lock (_keyClients)
        {
            _keyClients.Add(client);
        }
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        lock (_keyClients)
        {
            _keyClients.ForEach(c => c.Dispose());
        }
        await _app.StopAsync();
        await _app.DisposeAsync();
        _ownedData?.Dispose();
        _ownedLocation?.Dispose();
    }
}

public static class HttpResponseExtensions
{
    public static async Task<JsonElement> JsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>Asserts an RFC 7807 problem response with <paramref name="status"/>; returns its body.</summary>
    public static async Task<JsonElement> ShouldBeProblemAsync(this HttpResponseMessage response, HttpStatusCode status, string? field = null)
    {
        var text = await response.Content.ReadAsStringAsync();
        response.StatusCode.Should().Be(status, text);
        response.Content.Headers.ContentType?.MediaType.Should().Be("application/problem+json", text);
        var body = JsonDocument.Parse(text).RootElement.Clone();
        body.GetProperty("status").GetInt32().Should().Be((int)status);
        body.GetProperty("title").GetString().Should().NotBeNullOrEmpty();
        body.GetProperty("detail").GetString().Should().NotBeNullOrEmpty();
        if (field is not null)
        {
            body.GetProperty("field").GetString().Should().Be(field, text);
        }
        return body;
    }
}
