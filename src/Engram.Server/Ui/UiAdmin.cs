using System.Globalization;
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

        var html = new HtmlBuilder();
        UiPage.Notice(html, ok, error);
        if (secret is not null)
        {
            html.Add($"<div class=\"notice ok\" role=\"status\">The new key, shown this once: <code class=\"mono\" id=\"new-key\">{secret}</code></div>");
        }

        html.Add($"<h2>API keys</h2><div class=\"table-wrap\"><table id=\"keys\"><thead><tr><th>Name</th><th>Prefix</th><th>Role</th><th>Scope</th><th>Created</th><th>Last used</th><th>State</th><th></th></tr></thead><tbody>");
        foreach (var key in await keys.ListAsync(caller.Tenant, ct))
        {
            var scope = key.Scope is null ? "" : string.Join(" ", new[] { ("user", key.Scope.UserId), ("agent", key.Scope.AgentId) }.Where(p => p.Item2 is not null).Select(p => $"{p.Item1}:{p.Item2}"));
            html.Add($"<tr><td>{key.Name}</td><td class=\"mono\">{key.Prefix}</td><td>{key.Role.Name()}</td><td class=\"mono\">{scope}</td><td class=\"mono\">{key.CreatedAt}</td><td class=\"mono\">{key.LastUsedAt}</td>");
            html.Add($"<td>{(key.RevokedAt is null ? "active" : "revoked")}</td><td>");
            if (key.RevokedAt is null)
            {
                html.Add($"<form method=\"post\" action=\"/ui/admin/keys/{key.Id}/rotate\" class=\"inline\" data-confirm=\"Rotate this key? The old one stops working.\">{UiPage.Antiforgery(http)}<button class=\"secondary\" type=\"submit\">Rotate</button></form> ");
                html.Add($"<form method=\"post\" action=\"/ui/admin/keys/{key.Id}/revoke\" class=\"inline\" data-confirm=\"Revoke this key?\">{UiPage.Antiforgery(http)}<button class=\"danger\" type=\"submit\">Revoke</button></form>");
            }
            html.Add($"</td></tr>");
        }
        html.Add($"</tbody></table></div>");
        html.Add($"<form class=\"card filters\" method=\"post\" action=\"/ui/admin/keys\">{UiPage.Antiforgery(http)}<label>Name<input name=\"name\"></label>");
        html.Add($"<label>Role<select name=\"role\"><option>read</option><option selected>write</option><option>admin</option></select></label>");
        html.Add($"<label>Scope: user<input name=\"user_id\"></label><label>Scope: agent<input name=\"agent_id\"></label><button type=\"submit\">Create key</button></form>");

        var readOnly = engine.Gate.ReadOnly;
        html.Add($"<h2>Read-only mode</h2><form class=\"card row\" method=\"post\" action=\"/ui/admin/readonly\">{UiPage.Antiforgery(http)}");
        html.Add($"<span id=\"readonly-state\">The server is {(readOnly ? "read-only: writes are refused" : "accepting writes")}.</span><input type=\"hidden\" name=\"enabled\" value=\"{(readOnly ? "false" : "true")}\">");
        html.Add($"<button type=\"submit\" class=\"secondary\">{(readOnly ? "Accept writes again" : "Switch to read-only")}</button></form>");

        html.Add($"<h2>Backups</h2><p class=\"muted\">Folder {backups.Folder}{(backups.Options.Enabled ? ", schedule " + backups.Options.Schedule : ", no schedule")}.</p>");
        html.Add($"<div class=\"table-wrap\"><table id=\"backups\"><thead><tr><th>Name</th><th>Created</th><th>Size</th><th>Kind</th><th>Verified</th><th></th></tr></thead><tbody>");
        foreach (var b in backups.List())
        {
            html.Add($"<tr><td class=\"mono\">{b.Name}</td><td class=\"mono\">{b.CreatedAt}</td><td>{(b.SizeBytes / 1024.0).ToString("0.0", CultureInfo.InvariantCulture)} KB</td><td>{b.Kind}</td><td>{b.Verified} {b.Problem}</td>");
            html.Add($"<td><form method=\"post\" action=\"/ui/admin/backups/{Uri.EscapeDataString(b.Name)}/verify\" class=\"inline\">{UiPage.Antiforgery(http)}<button class=\"secondary\" type=\"submit\">Verify</button></form></td></tr>");
        }
        html.Add($"</tbody></table></div><form class=\"row\" method=\"post\" action=\"/ui/admin/backups\">{UiPage.Antiforgery(http)}<button type=\"submit\">Back up now</button>");
        html.Add($"<a class=\"button secondary\" href=\"/ui/admin/export\" download>Export (JSON Lines)</a></form>");

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
        html.Add($"<h2>Jobs</h2><p>Language model: {llm.Model?.Options.Model ?? "not configured"}. Extraction jobs waiting: {queue?.ToString(CultureInfo.InvariantCulture) ?? "unknown"}.</p>");
        if (jobs.Count > 0)
        {
            html.Add($"<div class=\"table-wrap\"><table id=\"jobs\"><thead><tr><th>Job</th><th>Status</th><th>Attempts</th><th>Created</th><th>Memories</th><th>Error</th></tr></thead><tbody>");
            foreach (var job in jobs)
            {
                html.Add($"<tr><td class=\"mono\"><a href=\"/v1/jobs/{job.Id}\">{job.Id}</a></td><td>{job.Status}</td><td>{job.Attempts}</td><td class=\"mono\">{job.CreatedAt}</td><td>{job.MemoryIds.Count}</td><td>{job.Error}</td></tr>");
            }
            html.Add($"</tbody></table></div>");
        }

        await trail.FlushAsync();
        var entries = await audit.ReadAuditAsync(new AuditQuery(caller.Tenant, null, null, 50), ct);
        html.Add($"<h2>Audit log</h2><div class=\"table-wrap\"><table id=\"audit\"><thead><tr><th>At</th><th>Actor</th><th>Action</th><th>Target</th><th>Outcome</th><th>Detail</th></tr></thead><tbody>");
        foreach (var e in entries.Items)
        {
            html.Add($"<tr><td class=\"mono\">{e.At}</td><td>{e.Actor}</td><td>{e.Action}</td><td class=\"mono\">{e.Target}</td><td>{e.Outcome}</td><td>{e.Detail}</td></tr>");
        }
        html.Add($"</tbody></table></div>");

        html.Add($"<h2>Configuration</h2><pre class=\"card mono\" id=\"config\">{MaskedConfiguration(options)}</pre>");
        return UiPage.Render(http, "Admin", "/ui/admin", html);
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
                    if (value is JsonValue v && v.GetValueKind() == JsonValueKind.String && IsSecret(key, v.GetValue<string>()))
                    {
                        o[key] = "***";
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
                    if (a[i] is JsonValue v && v.GetValueKind() == JsonValueKind.String && IsSecret(name ?? "", v.GetValue<string>()))
                    {
                        a[i] = "***";
                    }
                    else
                    {
                        Mask(a[i], name);
                    }
                }
                break;
        }
    }

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
