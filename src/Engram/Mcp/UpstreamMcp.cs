using System.Net;
using System.Net.Sockets;
using ModelContextProtocol;
using ModelContextProtocol.Client;
using ModelContextProtocol.Protocol;

namespace Engram.Cli.Mcp;

/// <summary>
/// The proxy's connection to a running server's <c>/mcp</c> (Streamable HTTP, the SDK's client). It connects
/// on first use, not at start, so the proxy answers <c>initialize</c> at once even when the server is down;
/// a failed connection is retried by the next request. Failures of the link (unreachable, refused key,
/// no MCP endpoint) become <see cref="UpstreamUnavailableException"/> with a message a person can act on;
/// the server's own protocol errors pass through untouched.
/// </summary>
internal sealed class UpstreamMcp : IAsyncDisposable
{
    /// <summary>The header by which an admin key (or an open server) acts for another tenant, as on REST.</summary>
    private const string TenantHeader = "X-Engram-Tenant";

    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    // Long enough for a first search that waits for the index; the MCP client cancels sooner if it wants to.
    private static readonly TimeSpan RequestTimeout = TimeSpan.FromMinutes(5);

    private readonly Uri _endpoint;
    private readonly string? _apiKey;
    private readonly string? _tenant;
    private readonly TextWriter _log;
    private readonly SemaphoreSlim _connecting = new(1, 1);
    private McpClient? _client;
    private string? _lastReported;

    // The last failed connection: a request that waited for it gets its answer instead of trying again at once
    // (a server that does not answer would otherwise cost each waiting request a full connect timeout).
    private int _failedConnections;
    private UpstreamUnavailableException? _lastConnectFailure;

    public UpstreamMcp(Uri endpoint, string? apiKey, string? tenant, TextWriter log)
    {
        _endpoint = endpoint;
        _apiKey = apiKey;
        _tenant = tenant;
        _log = log;
    }

    public Uri Endpoint => _endpoint;

    /// <summary>Runs one request against the server, connecting first if needed.</summary>
    public async ValueTask<T> SendAsync<T>(Func<McpClient, CancellationToken, ValueTask<T>> request, CancellationToken ct)
    {
        var client = await ConnectAsync(ct);
        try
        {
            var result = await request(client, ct);
            _lastReported = null;
            return result;
        }
        catch (Exception ex) when (Describe(ex, ct) is { } message)
        {
            // The link failed under a live client (the server stopped, the key was revoked): start afresh next time.
            await ResetAsync(client);
            throw Report(message, ex);
        }
    }

    /// <summary>Connects in the background so that a bad URL or key shows on stderr at start, not only at the first call.</summary>
    public async Task WarmUpAsync(CancellationToken ct)
    {
        try
        {
            await ConnectAsync(ct);
        }
        catch (UpstreamUnavailableException)
        {
            // Already reported; requests retry.
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private async ValueTask<McpClient> ConnectAsync(CancellationToken ct)
    {
        if (_client is { } ready)
        {
            return ready;
        }
        var failuresBefore = Volatile.Read(ref _failedConnections);
        await _connecting.WaitAsync(ct);
        try
        {
            if (_client is { } connected)
            {
                return connected;
            }
            if (_failedConnections != failuresBefore && _lastConnectFailure is { } justFailed)
            {
                throw new UpstreamUnavailableException(justFailed.Message, justFailed);
            }
            var http = new HttpClient(new SocketsHttpHandler { ConnectTimeout = ConnectTimeout }) { Timeout = RequestTimeout };
            var headers = new Dictionary<string, string>();
            if (_apiKey is not null)
            {
                headers["Authorization"] = "Bearer " + _apiKey;
            }
            if (_tenant is not null)
            {
                headers[TenantHeader] = _tenant;
            }
            var transport = new HttpClientTransport(new HttpClientTransportOptions
            {
                Endpoint = _endpoint,
                TransportMode = HttpTransportMode.StreamableHttp,
                AdditionalHeaders = headers,
                Name = "engram",
            }, http, loggerFactory: null, ownsHttpClient: true);
            try
            {
                _client = await McpClient.CreateAsync(transport, new McpClientOptions
                {
                    ClientInfo = new Implementation { Name = "engram-mcp-proxy", Version = McpProxy.Version },
                    InitializationTimeout = ConnectTimeout + ConnectTimeout,
                }, cancellationToken: ct);
                if (_lastReported is not null)
                {
                    _log.WriteLine($"engram: connected to {_endpoint}");
                    _lastReported = null;
                }
                return _client;
            }
            catch (Exception ex) when (Describe(ex, ct) is { } message)
            {
                await transport.DisposeAsync();
                _lastConnectFailure = Report(message, ex);
                Interlocked.Increment(ref _failedConnections);
                throw _lastConnectFailure;
            }
        }
        finally
        {
            _connecting.Release();
        }
    }

    private async ValueTask ResetAsync(McpClient client)
    {
        await _connecting.WaitAsync();
        try
        {
            if (ReferenceEquals(_client, client))
            {
                _client = null;
            }
        }
        finally
        {
            _connecting.Release();
        }
        await client.DisposeAsync();
    }

    /// <summary>Says it once on stderr (not again for each call while the server stays down) and returns the exception to throw.</summary>
    private UpstreamUnavailableException Report(string message, Exception cause)
    {
        if (message != _lastReported)
        {
            _log.WriteLine("engram: " + message);
            _lastReported = message;
        }
        return new UpstreamUnavailableException(message, cause);
    }

    /// <summary>What went wrong with the link, or null for what is not a link failure (the server's protocol errors, our cancellation).</summary>
    private string? Describe(Exception exception, CancellationToken ct)
    {
        if (exception is OperationCanceledException && ct.IsCancellationRequested)
        {
            return null;
        }
        if (exception is McpProtocolException)
        {
            return null;
        }
        var http = Find<HttpRequestException>(exception);
        var where = $"the Engram server at {_endpoint}";
        if (http?.StatusCode is { } status)
        {
            return status switch
            {
                HttpStatusCode.Unauthorized => _apiKey is null
                    ? $"{where} needs an API key: set {Client.HttpMemoryClient.ApiKeyVariable} (401 Unauthorized)"
                    : $"{where} refused the API key in {Client.HttpMemoryClient.ApiKeyVariable} (401 Unauthorized)",
                HttpStatusCode.Forbidden => _tenant is null
                    ? $"{where} refused the request (403 Forbidden): the key lacks the role, or the server refuses this client's address or origin"
                    : $"{where} refused the request (403 Forbidden): only an admin key may act for another tenant (--tenant {_tenant})",
                HttpStatusCode.NotFound => $"{where} has no MCP endpoint (404 Not Found); is it an Engram server with MCP (the URL is the server's base URL)?",
                HttpStatusCode.TooManyRequests => $"{where} is rate-limiting this client (429 Too Many Requests); try again later",
                _ => $"{where} answered {(int)status} {status}",
            };
        }
        if (http is not null || Find<SocketException>(exception) is not null)
        {
            return $"cannot reach {where}: {Innermost(exception).Message}; is `engram serve` running there?";
        }
        if (exception is TimeoutException or OperationCanceledException)
        {
            return $"{where} did not answer in time";
        }
        return exception is IOException or InvalidOperationException
            ? $"the link to {where} failed: {Innermost(exception).Message}"
            : null;
    }

    private static T? Find<T>(Exception exception)
        where T : Exception
    {
        for (Exception? current = exception; current is not null; current = current.InnerException)
        {
            if (current is T found)
            {
                return found;
            }
        }
        return null;
    }

    private static Exception Innermost(Exception exception)
    {
        var current = exception;
        while (current.InnerException is not null)
        {
            current = current.InnerException;
        }
        return current;
    }

    public async ValueTask DisposeAsync()
    {
        if (_client is { } client)
        {
            await client.DisposeAsync();
        }
        _connecting.Dispose();
    }
}

/// <summary>The proxy cannot reach or use the server; the message says why and what to do.</summary>
internal sealed class UpstreamUnavailableException(string message, Exception inner) : Exception(message, inner);
