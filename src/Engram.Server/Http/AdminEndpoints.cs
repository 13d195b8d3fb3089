using System.Globalization;
using Engram.Core.Common;
using Engram.Core.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary>
/// <c>/v1/admin</c>: API keys and the audit log, for admin keys. Everything acts in the caller's tenant
/// (its key's, or the one it names with X-Engram-Tenant); a key is shown in plain once, in the answer
/// that creates or rotates it. A scoped key may not manage keys (it could mint itself an unscoped one).
/// </summary>
internal static class AdminEndpoints
{
    private const int MaxAuditLimit = 1000;

    public static IEndpointRouteBuilder MapAdminEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/admin").WithTags("admin");
        group.MapGet("/keys", ListKeysAsync).WithName("ListApiKeys").Requires(Role.Admin)
            .WithSummary("The tenant's API keys (never the key itself), oldest first.").Produces<ApiKeyList>();
        group.MapPost("/keys", CreateKeyAsync).WithName("CreateApiKey").Requires(Role.Admin)
            .WithSummary("Create a key in the tenant; the answer holds the key, shown this once.")
            .Accepts<CreateApiKeyRequest>("application/json").Produces<CreatedApiKeyView>(StatusCodes.Status201Created).ProducesProblem(400);
        group.MapDelete("/keys/{id}", RevokeKeyAsync).WithName("RevokeApiKey").Requires(Role.Admin)
            .WithSummary("Revoke a key (by id or prefix); it stops working at once.").Produces<ApiKeyView>().ProducesProblem(404);
        group.MapPost("/keys/{id}/rotate", RotateKeyAsync).WithName("RotateApiKey").Requires(Role.Admin)
            .WithSummary("Replace a key's secret (same role, scope and name); the old key stops working at once.")
            .Produces<CreatedApiKeyView>().ProducesProblem(404);
        group.MapGet("/audit", AuditAsync).WithName("ReadAudit").Requires(Role.Admin)
            .WithSummary("The tenant's audit log, newest first: since (ISO time), action (key.create, or a family: key.*), limit (max 1000), cursor.")
            .Produces<AuditList>().ProducesProblem(400);
        return app;
    }

    private static async Task<IResult> ListKeysAsync(HttpContext http, ApiKeyService keys, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var caller = KeyManager(http);
        var list = await keys.ListAsync(caller.Tenant, ct);
        return TypedResults.Ok(new ApiKeyList([.. list.Select(ApiKeyView.Of)]));
    }

    private static async Task<IResult> CreateKeyAsync(HttpContext http, ApiKeyService keys, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var caller = KeyManager(http);
        var request = await JsonBody.ReadAsync<CreateApiKeyRequest>(http.Request, BodySize.Small, ct);
        if (!Roles.TryParse(request.Role, out var role))
        {
            throw new ValidationException("role", "role must be admin, write or read");
        }
        var scope = request.Scope is null ? null : new KeyScope(request.Scope.UserId, request.Scope.AgentId);
        var created = await keys.CreateAsync(new NewApiKey(caller.Tenant, role, scope, request.Name, request.ExpiresAt), caller.Actor, Remote(http), ct);
        return TypedResults.Created($"/v1/admin/keys/{created.Key.Id}", CreatedApiKeyView.Of(created));
    }

    private static async Task<IResult> RevokeKeyAsync(string id, HttpContext http, ApiKeyService keys, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var caller = KeyManager(http);
        return TypedResults.Ok(ApiKeyView.Of(await keys.RevokeAsync(id, caller.Tenant, caller.Actor, Remote(http), ct)));
    }

    private static async Task<IResult> RotateKeyAsync(string id, HttpContext http, ApiKeyService keys, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var caller = KeyManager(http);
        return TypedResults.Ok(CreatedApiKeyView.Of(await keys.RotateAsync(id, caller.Tenant, caller.Actor, Remote(http), ct)));
    }

    private static async Task<IResult> AuditAsync(HttpContext http, IAuditLog log, AuditTrail trail, CancellationToken ct)
    {
        var query = http.Request.Query;
        QueryParser.RefuseAllExcept(query, "since", "action", "tenant", "limit", "cursor");
        var caller = http.GetCaller();
        caller.Require(Role.Admin, "read the audit log");
        if (caller.IsScoped)
        {
            throw new ForbiddenException("a scoped key may not read the audit log (it records the whole tenant's keys and requests)");
        }
        if (QueryParser.Single(query, "tenant") is { } tenant && tenant != caller.Tenant)
        {
            throw new ForbiddenException($"this request acts for tenant '{caller.Tenant}'; name another tenant with the {AuthenticationGate.TenantHeader} header");
        }
        var limit = QueryParser.Int(query, "limit") ?? 100;
        if (limit is < 1 or > MaxAuditLimit)
        {
            throw new ValidationException("limit", $"limit must be 1-{MaxAuditLimit}");
        }
        DateTimeOffset? since = null;
        if (QueryParser.Single(query, "since") is { } sinceText)
        {
            since = DateTimeOffset.TryParse(sinceText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
                ? parsed
                : throw new ValidationException("since", $"since must be an ISO 8601 time, e.g. 2026-12-01T00:00:00Z (got '{sinceText}')");
        }
        long? cursor = null;
        if (QueryParser.Single(query, "cursor") is { } cursorText)
        {
            cursor = long.TryParse(cursorText, NumberStyles.None, CultureInfo.InvariantCulture, out var seq) ? seq : throw new ValidationException("cursor", "cursor must be a next_cursor from an earlier page");
        }
        var action = QueryParser.Single(query, "action");
        if (action is { Length: > 64 })
        {
            throw new ValidationException("action", "action is at most 64 characters");
        }
        await trail.FlushAsync(); // entries queued by earlier requests are in the answer
        var page = await log.ReadAuditAsync(new AuditQuery(caller.Tenant, since, action, limit, cursor), ct);
        return TypedResults.Ok(new AuditList([.. page.Items.Select(AuditEntryView.Of)], page.NextCursor?.ToString(CultureInfo.InvariantCulture)));
    }

    private static Caller KeyManager(HttpContext http)
    {
        var caller = http.GetCaller();
        caller.Require(Role.Admin, "manage API keys");
        if (caller.IsScoped)
        {
            throw new ForbiddenException("a scoped key may not manage API keys");
        }
        return caller;
    }

    private static string? Remote(HttpContext http) => http.Connection.RemoteIpAddress?.ToString();
}

public sealed record CreateApiKeyRequest(string? Role, ApiKeyScopeView? Scope = null, string? Name = null, DateTimeOffset? ExpiresAt = null);

public sealed record ApiKeyScopeView(string? UserId, string? AgentId);

/// <summary>A key as listed: never the key or its hash.</summary>
public sealed record ApiKeyView(string Id, string Prefix, string Tenant, string Role, ApiKeyScopeView? Scope, string? Name,
    DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, DateTimeOffset? LastUsedAt)
{
    public static ApiKeyView Of(ApiKey key) => new(key.Id, key.Prefix, key.Tenant, key.Role.Name(),
        key.Scope is null ? null : new ApiKeyScopeView(key.Scope.UserId, key.Scope.AgentId), key.Name, key.CreatedAt, key.ExpiresAt, key.RevokedAt, key.LastUsedAt);
}

/// <summary>A key just created or rotated: the plain key, shown this once, and what it is.</summary>
public sealed record CreatedApiKeyView(string Key, string Id, string Prefix, string Tenant, string Role, ApiKeyScopeView? Scope, string? Name,
    DateTimeOffset CreatedAt, DateTimeOffset? ExpiresAt)
{
    public static CreatedApiKeyView Of(CreatedApiKey created)
    {
        var view = ApiKeyView.Of(created.Key);
        return new(created.Secret, view.Id, view.Prefix, view.Tenant, view.Role, view.Scope, view.Name, view.CreatedAt, view.ExpiresAt);
    }
}

public sealed record ApiKeyList(IReadOnlyList<ApiKeyView> Items);

public sealed record AuditEntryView(long Seq, DateTimeOffset At, string Tenant, string Actor, string Action, string? Target, string Outcome, string? Remote, string? Detail)
{
    public static AuditEntryView Of(AuditEntry e) => new(e.Seq, e.At, e.Tenant, e.Actor, e.Action, e.Target, e.Outcome, e.Remote, e.Detail);
}

public sealed record AuditList(IReadOnlyList<AuditEntryView> Items, string? NextCursor);
