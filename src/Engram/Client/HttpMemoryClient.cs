using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Server.Http;

namespace Engram.Cli.Client;

/// <summary>Runs the commands against a running server's REST API (<c>/v1</c>).</summary>
internal sealed partial class HttpMemoryClient : IMemoryClient
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly HttpClient _http;
    private readonly Uri _server;

    /// <param name="server">The server's base URL.</param>
    /// <param name="tenant">A tenant to act in (X-Engram-Tenant; the server allows it to admin keys only), or null for the key's own.</param>
    public HttpMemoryClient(Uri server, string? tenant = null)
    {
        _server = server;
        _http = new HttpClient { BaseAddress = server, Timeout = Timeout };
        // The server records "http:cli" as the actor in history.
        _http.DefaultRequestHeaders.Add("X-Engram-Actor", InProcessMemoryClient.Actor);
        // A server with API keys needs one: ENGRAM_API_KEY (never a flag, which would show in the process list).
        if (Environment.GetEnvironmentVariable(ApiKeyVariable) is { Length: > 0 } key)
        {
            _http.DefaultRequestHeaders.TryAddWithoutValidation("Authorization", "Bearer " + key.Trim());
        }
        if (tenant is not null)
        {
            _http.DefaultRequestHeaders.Add("X-Engram-Tenant", tenant);
        }
    }

    public const string ApiKeyVariable = "ENGRAM_API_KEY";

    public async Task<WrittenMemory> AddAsync(NewMemory memory, DuplicatePolicy policy, CancellationToken ct)
    {
        var path = "v1/memories?on_duplicate=" + policy.ToString().ToLowerInvariant();
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent(memory) };
        return ReadWritten(await SendAsync(request, ct));
    }

    public async Task<Memory> GetAsync(string id, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, MemoryPath(id));
        return Deserialize<Memory>(await SendAsync(request, ct), EngramJson.Options);
    }

    public async Task<MemoryListResponse> ListAsync(MemoryFilter filter, int? limit, string? cursor, CancellationToken ct)
    {
        var query = FilterQuery.From(filter);
        if (limit is { } pageSize)
        {
            query.Add(("limit", pageSize.ToString(CultureInfo.InvariantCulture)));
        }
        if (!string.IsNullOrEmpty(cursor))
        {
            query.Add(("cursor", cursor));
        }
        using var request = new HttpRequestMessage(HttpMethod.Get, "v1/memories" + FilterQuery.Format(query));
        return Deserialize<MemoryListResponse>(await SendAsync(request, ct), EngramJson.Options);
    }

    public async Task<WrittenMemory> UpdateAsync(string id, MemoryPatch patch, long? expectedVersion, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Patch, MemoryPath(id)) { Content = JsonContent(patch) };
        if (expectedVersion is { } version)
        {
            request.Headers.TryAddWithoutValidation("If-Match", $"\"{version.ToString(CultureInfo.InvariantCulture)}\"");
        }
        return ReadWritten(await SendAsync(request, ct));
    }

    public async Task<long> DeleteAsync(string id, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, MemoryPath(id));
        using var response = await SendRawAsync(request, ct);
        await EnsureSuccessAsync(response, ct);
        return response.Headers.TryGetValues("X-Engram-Seq", out var values) && long.TryParse(values.FirstOrDefault(), out var seq)
            ? seq
            : throw new BackendUnavailableException($"the server at {_server} deleted without reporting a sequence number (X-Engram-Seq); is it an Engram server?");
    }

    public async Task<BulkDeleteResponse> DeleteManyAsync(MemoryFilter filter, CancellationToken ct)
    {
        var query = FilterQuery.From(filter);
        query.Add(("confirm", "true"));
        using var request = new HttpRequestMessage(HttpMethod.Delete, "v1/memories" + FilterQuery.Format(query));
        return Deserialize<BulkDeleteResponse>(await SendAsync(request, ct), EngramJson.Options);
    }

    public async Task<HistoryResponse> GetHistoryAsync(string id, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, MemoryPath(id) + "/history");
        return Deserialize<HistoryResponse>(await SendAsync(request, ct), EngramJson.Options);
    }

    public async Task<StoreStatistics> GetStatsAsync(CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "v1/stats");
        return Deserialize<StoreStatistics>(await SendAsync(request, ct), EngramJson.Options);
    }

    public async Task<SearchResponse> SearchAsync(SearchRequest search, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/search") { Content = JsonContent(search) };
        return Deserialize<SearchResponse>(await SendAsync(request, ct), EngramJson.Options);
    }

    public ValueTask DisposeAsync()
    {
        _http.Dispose();
        return ValueTask.CompletedTask;
    }

    private static string MemoryPath(string id) => "v1/memories/" + Uri.EscapeDataString(id);

    private static StringContent JsonContent<T>(T body) =>
        new(JsonSerializer.Serialize(body, RequestJson.Options), Encoding.UTF8, "application/json");

    /// <summary>Sends and returns the body of a successful response; errors become exceptions.</summary>
    private async Task<string> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        using var response = await SendRawAsync(request, ct);
        await EnsureSuccessAsync(response, ct);
        return await response.Content.ReadAsStringAsync(ct);
    }

    private async Task<HttpResponseMessage> SendRawAsync(HttpRequestMessage request, CancellationToken ct)
    {
        try
        {
            return await _http.SendAsync(request, ct);
        }
        catch (HttpRequestException ex)
        {
            throw new BackendUnavailableException($"cannot reach the Engram server at {_server}: {ex.Message}", ex);
        }
        catch (TaskCanceledException ex) when (!ct.IsCancellationRequested)
        {
            throw new BackendUnavailableException($"the Engram server at {_server} did not answer within {Timeout.TotalSeconds:0} s", ex);
        }
    }

    private async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        var body = await response.Content.ReadAsStringAsync(ct);
        throw HttpProblem.ToException(response.StatusCode, response.Content.Headers.ContentType?.MediaType, body, _server);
    }

    /// <summary>A write's body is a memory plus <c>seq</c> and <c>duplicate</c>; rebuild the same <see cref="WrittenMemory"/> the server serialized.</summary>
    private WrittenMemory ReadWritten(string body)
    {
        var memory = Deserialize<Memory>(body, RequestJson.Lenient);
        var extras = Deserialize<WriteExtras>(body, RequestJson.Lenient);
        return new WrittenMemory(new WriteResult(memory, extras.Duplicate, extras.Seq));
    }

    private T Deserialize<T>(string body, JsonSerializerOptions options)
    {
        try
        {
            return JsonSerializer.Deserialize<T>(body, options)
                ?? throw new JsonException("the body is null");
        }
        catch (JsonException ex)
        {
            throw new BackendUnavailableException($"the server at {_server} answered with an unexpected body ({ex.Message}); is it an Engram server of a matching version?", ex);
        }
    }

    private sealed record WriteExtras(long Seq, bool Duplicate);
}
