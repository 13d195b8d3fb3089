using System.Text.Json;
using System.Text.Json.Nodes;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Server.Http;
using Engram.Server.Operations;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Engram.Server.Ui;

/// <summary>
/// Admin (role admin, unscoped key): API keys (create, revoke, rotate), the read-only switch, backups (list, start,
/// verify), the export, the audit log, the configuration with secrets masked, and the LLM extraction queue.
/// </summary>
internal static class UiAdmin
{
    public static Task<IResult> PageAsync(HttpContext http, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(UiPage.Filled(http.Request.Query));
        return RenderAsync(http, null, null, ct);
    }

    private static async Task<IResult> RenderAsync(HttpContext http, string? ok, string? secret, CancellationToken ct, string? error = null)
    {
        var caller = Operator(http);
        var services = http.RequestServices;
        var keys = services.GetRequiredService<ApiKeyService>();
        var engine = services.GetRequiredService<EngramEngine>();
        var backups = services.GetRequiredService<BackupService>();
        var audit = services.GetRequiredService<IAuditLog>();
        var trail = services.GetRequiredService<AuditTrail>();
        var extractor = services.GetRequiredService<Core.Llm.ConversationExtractor>();
        var llm = services.GetRequiredService<Core.Llm.LlmAccess>();
        var options = services.GetRequiredService<IOptions<EngramServerOptions>>().Value;

        long? queue = null;
        IReadOnlyList<Core.Llm.ExtractionJob> jobs = [];
        try
        {
            queue = await extractor.Jobs.CountPendingExtractionJobsAsync(caller.Tenant, ct);
            jobs = await extractor.Jobs.ListRecentExtractionJobsAsync(caller.Tenant, 20, ct);
        }
        catch (Core.Storage.StoreUnavailableException)
        {
            // The store is away: the page still renders, without the queue depth.
        }
        await trail.FlushAsync();
        var entries = await audit.ReadAuditAsync(new AuditQuery(caller.Tenant, null, null, 50), ct);
        return UiPage.Render<AdminPage>(http, new AdminPage.Data(ok, error, secret, await keys.ListAsync(caller.Tenant, ct), engine.Gate.ReadOnly,
            backups.Folder, backups.Options.Enabled ? backups.Options.Schedule : null, backups.List(), llm.Model?.Options.Model, queue, jobs, entries.Items,
            MaskedConfiguration(options)));
    }

    private static readonly string[] SecretWords = ["key", "token", "password", "secret", "credential", "store", "connection"];

    /// <summary>The settings as JSON with every value that may be a secret replaced by "***" (keys, tokens, passwords, connection strings, URLs with credentials).</summary>
    internal static string MaskedConfiguration(EngramServerOptions options)
    {
        JsonNode? node;
        try
        {
            node = JsonSerializer.SerializeToNode(options, EngramJson.Options);
        }
        catch (NotSupportedException)
        {
            return "(the configuration cannot be shown)";
        }
        Mask(node, null);
        return node?.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) ?? "";
    }

    private static void Mask(JsonNode? node, string? name)
    {
        switch (node)
        {
            case JsonObject o:
                foreach (var (key, value) in o.ToList())
                {
                    if (value is JsonValue v && v.GetValueKind() == JsonValueKind.String)
                    {
                        o[key] = IsSecret(key, v.GetValue<string>()) ? "***" : MaskUrlPaths(v.GetValue<string>());
                    }
                    else
                    {
                        Mask(value, key);
                    }
                }
                break;
            case JsonArray a:
                for (var i = 0; i < a.Count; i++)
                {
                    if (a[i] is JsonValue v && v.GetValueKind() == JsonValueKind.String)
                    {
                        a[i] = IsSecret(name ?? "", v.GetValue<string>()) ? "***" : MaskUrlPaths(v.GetValue<string>());
                    }
                    else
                    {
                        Mask(a[i], name);
                    }
                }
                break;
        }
    }

    /// <summary>
    /// Each http(s) URL in the value (one, or a comma-separated list) shown as its origin and "/***" when it has a path or
    /// a query: webhook URLs carry their credential there (Slack's /services/T/B/secret, Discord's /api/webhooks/id/token,
    /// ?token=), under names such as webhook_url or urls that name no secret, and the page showed them whole.
    /// </summary>
    internal static string MaskUrlPaths(string value) =>
        !value.Contains("://", StringComparison.Ordinal)
            ? value
            : string.Join(",", value.Split(',').Select(part =>
                Uri.TryCreate(part.Trim(), UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
                    && (uri.AbsolutePath != "/" || uri.Query.Length > 0 || uri.Fragment.Length > 0)
                    ? uri.GetLeftPart(UriPartial.Authority) + "/***"
                    : part));

    private static bool IsSecret(string name, string value) =>
        value.Length > 0 && (SecretWords.Any(w => name.Contains(w, StringComparison.OrdinalIgnoreCase))
            || value.Contains("password", StringComparison.OrdinalIgnoreCase)
            || (Uri.TryCreate(value, UriKind.Absolute, out var uri) && !string.IsNullOrEmpty(uri.UserInfo)));

    public static async Task<IResult> CreateKeyAsync(HttpContext http, ApiKeyService keys, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var form = await UiPage.ReadFormAsync(http, ct);
        var caller = Operator(http);
        if (!Roles.TryParse(UiPage.Field(form, "role"), out var role))
        {
            throw new ValidationException("role", "role must be admin, write or read");
        }
        var user = UiPage.Field(form, "user_id");
        var agent = UiPage.Field(form, "agent_id");
        var scope = user is null && agent is null ? null : new KeyScope(user, agent);
        var created = await keys.CreateAsync(new NewApiKey(caller.Tenant, role, scope, UiPage.Field(form, "name")), caller.Actor, Remote(http), ct);
        return await RenderAsync(http, $"Created key {created.Key.Prefix}.", created.Secret, ct);
    }

    public static async Task<IResult> RevokeKeyAsync(string id, HttpContext http, ApiKeyService keys, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        await UiPage.ReadFormAsync(http, ct);
        var caller = Operator(http);
        var revoked = await keys.RevokeAsync(id, caller.Tenant, caller.Actor, Remote(http), ct);
        return await RenderAsync(http, $"Revoked key {revoked.Prefix}.", null, ct);
    }

    public static async Task<IResult> RotateKeyAsync(string id, HttpContext http, ApiKeyService keys, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        await UiPage.ReadFormAsync(http, ct);
        var caller = Operator(http);
        var rotated = await keys.RotateAsync(id, caller.Tenant, caller.Actor, Remote(http), ct);
        return await RenderAsync(http, $"Rotated key {rotated.Key.Prefix}: the old key no longer works.", rotated.Secret, ct);
    }

    public static async Task<IResult> ReadOnlyAsync(HttpContext http, EngramEngine engine, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var form = await UiPage.ReadFormAsync(http, ct);
        var caller = Operator(http);
        var enabled = UiPage.Field(form, "enabled") switch
        {
            "true" => true,
            "false" => false,
            _ => throw new ValidationException("enabled", "enabled must be true or false"),
        };
        engine.Gate.ReadOnly = enabled;
        http.Audit("server.readonly", enabled ? "on" : "off", $"by {caller.Actor} (UI)");
        return await RenderAsync(http, enabled ? "The server is now read-only." : "The server accepts writes again.", null, ct);
    }

    public static async Task<IResult> BackupAsync(HttpContext http, BackupService backups, IHostApplicationLifetime lifetime, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        await UiPage.ReadFormAsync(http, ct);
        Operator(http);
        var (_, name, verification) = await backups.CreateAsync(BackupKinds.Manual, lifetime.ApplicationStopping);
        return await RenderAsync(http, $"Backed up to {name} (verified: {(verification.Ok ? "ok" : "failed")}).", null, ct);
    }

    public static async Task<IResult> VerifyBackupAsync(string name, HttpContext http, BackupService backups, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        await UiPage.ReadFormAsync(http, ct);
        Operator(http);
        var verification = await backups.VerifyAsync(name, ct);
        return verification.Ok
            ? await RenderAsync(http, $"Backup {name} verified: ok.", null, ct)
            : await RenderAsync(http, null, null, ct, $"Backup {name} failed verification: {string.Join("; ", verification.Problems)}");
    }

    /// <summary>As the REST admin routes: an admin key that is not scoped (keys, backups and the switch concern the whole tenant or server).</summary>
    private static Caller Operator(HttpContext http)
    {
        var caller = http.GetCaller();
        caller.Require(Role.Admin, "use the admin page");
        if (caller.IsScoped)
        {
            throw new ForbiddenException("a scoped key may not use the admin page");
        }
        return caller;
    }

    private static string? Remote(HttpContext http) => http.Connection.RemoteIpAddress?.ToString();
}
