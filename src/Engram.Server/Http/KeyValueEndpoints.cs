using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary>
/// <c>/v1/kv</c>: key-value state with TTLs. Keys may hold ':' and '/', so the key is everything after
/// <c>/v1/kv/</c>, percent-decoded from the raw request target (so <c>%2F</c> and '/' both mean '/',
/// and <c>%25</c> a literal '%'). Literal routes (<c>mget</c>, <c>mset</c>, <c>cleanup</c>) take
/// precedence for POST; any other POST must end in <c>/incr</c> or <c>/expire</c>, the key being what
/// comes before. GET, PUT and DELETE never look at suffixes, so every key stays reachable.
/// </summary>
internal static class KeyValueEndpoints
{
    private const string Collection = "/v1/kv";
    private const string IncrSuffix = "/incr";
    private const string ExpireSuffix = "/expire";

    public static IEndpointRouteBuilder MapKeyValueEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/kv").WithTags("kv");

        group.MapGet("/", ListAsync).WithName("ListKeys").Requires(Role.Read)
            .WithSummary("Keys matching a Redis-style glob (pattern=*, ?, [abc]) in key order; page with limit (default 100, max 1000) and next_cursor.")
            .Produces<KvPage>().ProducesProblem(400);
        group.MapPost("/mget", GetManyAsync).WithName("GetKeys").Requires(Role.Read).WithSummary("Values of up to 1,000 keys, in request order; found=false for missing ones.")
            .Accepts<KvMGetRequest>("application/json").Produces<KvItemsResponse<KvLookup>>().ProducesProblem(400);
        group.MapPost("/mset", SetManyAsync).WithName("SetKeys").Requires(Role.Write).WithSummary("Set up to 1,000 keys in one transaction.")
            .Accepts<KvMSetRequest>("application/json").Produces<KvItemsResponse<KvWritten>>().ProducesProblem(400);
        group.MapPost("/cleanup", CleanupAsync).WithName("DeleteKeys").Requires(Role.Write)
            .WithSummary("Delete the keys matching a glob pattern, for about a second per call (Engram:KeyValue:CleanupBudgetMs): " +
                "deleted counts this call's keys; while done is false, call again with cursor = next_cursor.")
            .Accepts<KvCleanupRequest>("application/json").Produces<KvCleanupResult>().ProducesProblem(400);
        group.MapPut("/{**key}", SetAsync).WithName("SetKey").Requires(Role.Write)
            .WithSummary("Set a key to any JSON value. ttl_seconds: default MEMORY_DEFAULT_TTL_SECONDS, 0 = no expiry. nx: only if missing; xx: only if present (else 409). 201 created, 200 replaced.")
            .Accepts<KvPutRequest>("application/json").Produces<KvWritten>(StatusCodes.Status201Created).Produces<KvWritten>()
            .ProducesProblem(400).ProducesProblem(409);
        group.MapGet("/{**key}", GetAsync).WithName("GetKey").Requires(Role.Read)
            .WithSummary("The value, seconds to live (0: none) and expiry of a key; ?history=true for its history instead " +
                "(the newest limit entries, default 100, max 1000, in chronological order; next_cursor continues with older ones; " +
                "a page ends early once its values reach 8 MB).")
            .Produces<KvItem>().Produces<KvHistoryResult>().ProducesProblem(404);
        group.MapDelete("/{**key}", DeleteAsync).WithName("DeleteKey").Requires(Role.Write).Produces(StatusCodes.Status204NoContent).ProducesProblem(404);
        group.MapPost("/{**key}", PostAsync).WithName("IncrementOrExpireKey").Requires(Role.Write)
            .WithSummary("POST /v1/kv/{key}/incr {\"by\":N} adds atomically (a missing key starts at 0; 409 on a non-integer); POST /v1/kv/{key}/expire {\"ttl_seconds\":S} sets a new TTL (0 = persist).")
            .Produces<KvIncrResponse>().Produces<KvItem>().ProducesProblem(400).ProducesProblem(404).ProducesProblem(409);
        return app;
    }

    private static async Task<IResult> SetAsync(HttpContext http, KvService kv, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var key = KeyOf(http, "");
        var request = await JsonBody.ReadAsync<KvPutRequest>(http.Request, BodySize.KeyValue, ct);
        var written = await kv.SetAsync(http.GetCaller(), key, request.Value, request.TtlSeconds, request.Nx ?? false, request.Xx ?? false, ct);
        return written.Created ? TypedResults.Created(http.Request.Path, written) : TypedResults.Ok(written);
    }

    private static async Task<IResult> GetAsync(HttpContext http, KvService kv, CancellationToken ct)
    {
        var query = http.Request.Query;
        var key = KeyOf(http, "");
        if (QueryParser.Bool(query, "history"))
        {
            QueryParser.RefuseAllExcept(query, "history", "limit", "cursor");
            return TypedResults.Ok(await kv.GetHistoryAsync(http.GetCaller(), key, QueryParser.Int(query, "limit"), QueryParser.Single(query, "cursor"), ct));
        }
        QueryParser.RefuseAllExcept(query, "history");
        return TypedResults.Ok(await kv.GetAsync(http.GetCaller(), key, ct));
    }

    private static async Task<IResult> DeleteAsync(HttpContext http, KvService kv, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        await kv.DeleteAsync(http.GetCaller(), KeyOf(http, ""), ct);
        return TypedResults.NoContent();
    }

    private static async Task<IResult> PostAsync(HttpContext http, KvService kv, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var path = http.Request.Path.Value ?? "";
        if (path.EndsWith(IncrSuffix, StringComparison.Ordinal))
        {
            var key = KeyOf(http, IncrSuffix);
            var request = http.Request.ContentLength is 0 ? new KvIncrRequest(null) : await JsonBody.ReadAsync<KvIncrRequest>(http.Request, BodySize.Small, ct);
            var value = await kv.IncrementAsync(http.GetCaller(), key, request.By ?? 1, ct);
            return TypedResults.Ok(new KvIncrResponse(key, value));
        }
        if (path.EndsWith(ExpireSuffix, StringComparison.Ordinal))
        {
            var key = KeyOf(http, ExpireSuffix);
            var request = await JsonBody.ReadAsync<KvExpireRequest>(http.Request, BodySize.Small, ct);
            return TypedResults.Ok(await kv.ExpireAsync(http.GetCaller(), key, request.TtlSeconds, ct));
        }
        // The literal routes declare a JSON body, so routing passes them over for a request whose
        // Content-Type is missing or not JSON, and it lands here: answer as the literal route would
        // (415 for a type that is not JSON; a missing one is taken as JSON, like every other route).
        switch (KeyOf(http, ""))
        {
            case "mget":
                JsonMediaType.Require(http.Request.ContentType);
                return await GetManyAsync(http, kv, ct);
            case "mset":
                JsonMediaType.Require(http.Request.ContentType);
                return await SetManyAsync(http, kv, ct);
            case "cleanup":
                JsonMediaType.Require(http.Request.ContentType);
                return await CleanupAsync(http, kv, ct);
        }
        return Problems.For(404, $"no route for POST {path}: use /v1/kv/{{key}}/incr, /v1/kv/{{key}}/expire, /v1/kv/mget, /v1/kv/mset or /v1/kv/cleanup");
    }

    private static async Task<IResult> ListAsync(HttpContext http, KvService kv, CancellationToken ct)
    {
        var query = http.Request.Query;
        QueryParser.RefuseAllExcept(query, "pattern", "cursor", "limit");
        var page = await kv.ListAsync(http.GetCaller(), QueryParser.Single(query, "pattern"), QueryParser.Int(query, "limit"), QueryParser.Single(query, "cursor"), ct);
        return TypedResults.Ok(page);
    }

    private static async Task<IResult> GetManyAsync(HttpContext http, KvService kv, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var request = await JsonBody.ReadAsync<KvMGetRequest>(http.Request, BodySize.Batch, ct);
        var caller = http.GetCaller();
        kv.CheckGetMany(caller, request.Keys); // a 400 or 403 before the response starts
        return TypedResults.Ok(new KvItemsStream<KvStoredLookup>(ReadInChunksAsync(kv, caller, request.Keys!, ct)));
    }

    /// <summary>The keys of an mget read and serialized together; a chunk of 1 MB values is 16 values in memory at most.</summary>
    private const int MGetChunk = 16;

    /// <summary>
    /// An mget's items, read <see cref="MGetChunk"/> keys at a time while the serializer writes and sends the ones
    /// before, each value parsed only as it is written: 1,000 keys of 1 MB values were read, parsed and held at once
    /// (two such requests took the server's peak resident memory up by 950 MB) and now take a chunk's worth, the
    /// client's socket setting the pace. Each key is read at its turn.
    /// </summary>
    private static async IAsyncEnumerable<KvStoredLookup> ReadInChunksAsync(KvService kv, Caller caller, IReadOnlyList<string?> keys,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        for (var start = 0; start < keys.Count; start += MGetChunk)
        {
            var chunk = keys.Count <= MGetChunk ? keys : keys.Skip(start).Take(MGetChunk).ToArray();
            foreach (var item in await kv.GetManyStoredAsync(caller, chunk, ct).ConfigureAwait(false))
            {
                yield return item;
            }
        }
    }

    private static async Task<IResult> SetManyAsync(HttpContext http, KvService kv, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var request = await JsonBody.ReadAsync<KvMSetRequest>(http.Request, BodySize.Batch, ct);
        return TypedResults.Ok(new KvItemsResponse<KvWritten>(await kv.SetManyAsync(http.GetCaller(), request.Items, ct)));
    }

    private static async Task<IResult> CleanupAsync(HttpContext http, KvService kv, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var request = await JsonBody.ReadAsync<KvCleanupRequest>(http.Request, BodySize.Small, ct);
        var result = await kv.CleanupStepAsync(http.GetCaller(), request.Pattern, request.Cursor, ct);
        http.Audit(AuditActions.KvCleanup, request.Pattern, $"{result.Deleted} deleted");
        return TypedResults.Ok(result);
    }

    /// <summary>
    /// The key: the raw request target after <c>/v1/kv/</c>, without the query and <paramref name="suffix"/>,
    /// percent-decoded once. Empty when the target names no key (<c>/v1/kv</c>, <c>/v1/kv/</c>,
    /// <c>/v1/kv/incr</c>), which the key rules then refuse with a 400 naming <c>key</c>.
    /// </summary>
    internal static string KeyOf(HttpContext http, string suffix)
    {
        var raw = RawPaths.RawPath(http) ?? "";
        if (IsUnder(raw))
        {
            return RawPaths.Decode(KeyPart(raw, suffix), "key");
        }
        // An absolute-form target or a rewritten path: the decoded path is all there is.
        var path = http.Request.Path.Value ?? "";
        return IsUnder(path) ? KeyPart(path, suffix) : "";
    }

    private static bool IsUnder(string target) =>
        target.StartsWith(Collection, StringComparison.OrdinalIgnoreCase) && (target.Length == Collection.Length || target[Collection.Length] == '/');

    /// <summary>What follows <c>/v1/kv/</c>, without <paramref name="suffix"/>; still encoded if the target was.</summary>
    private static string KeyPart(string target, string suffix)
    {
        var rest = target[Collection.Length..];
        if (suffix.Length > 0 && rest.EndsWith(suffix, StringComparison.Ordinal))
        {
            rest = rest[..^suffix.Length];
        }
        return rest.StartsWith('/') ? rest[1..] : rest;
    }
}

public sealed record KvPutRequest(JsonElement Value, long? TtlSeconds, bool? Nx, bool? Xx);

public sealed record KvIncrRequest(long? By);

public sealed record KvIncrResponse(string Key, long Value);

public sealed record KvExpireRequest(long? TtlSeconds);

public sealed record KvMGetRequest(IReadOnlyList<string?>? Keys);

public sealed record KvMSetRequest(IReadOnlyList<KvSetItem?>? Items);

public sealed record KvCleanupRequest(string? Pattern, string? Cursor = null);

public sealed record KvItemsResponse<T>(IReadOnlyList<T> Items);

/// <summary><see cref="KvItemsResponse{T}"/> written as its items are read (the same JSON).</summary>
public sealed record KvItemsStream<T>(IAsyncEnumerable<T> Items);
