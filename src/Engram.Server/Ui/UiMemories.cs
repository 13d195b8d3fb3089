using System.Globalization;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>The memories pages: the filtered listing (a shareable link), one memory with edit, delete and history, add, bulk delete by scope.</summary>
internal static class UiMemories
{
    private static readonly (string Name, string Label)[] FilterFields =
    [
        ("user_id", "User"), ("agent_id", "Agent"), ("session_id", "Session"), ("namespace", "Namespace"), ("type", "Type"),
        ("tags", "Tags (comma)"), ("entity", "Entity"), ("source", "Source"), ("created_after", "Created after"), ("created_before", "Created before"),
    ];

    public static async Task<IResult> ListAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var query = UiPage.Filled(http.Request.Query);
        var filter = QueryParser.Filter(query, "limit", "cursor", "deleted", "added") with { ExcludeSuperseded = true };
        var limit = QueryParser.Int(query, "limit") ?? 50;
        var caller = http.GetCaller();
        var page = await memories.ListAsync(caller, filter, limit, QueryParser.Single(query, "cursor"), ct);

        var html = new HtmlBuilder();
        UiPage.Notice(html, QueryParser.Single(query, "deleted") is { } d ? $"Deleted {d}." : QueryParser.Single(query, "added") is { } a ? $"Added {a}." : null, null);
        html.Add($"<form class=\"card filters\" method=\"get\" action=\"/ui/memories\" role=\"search\" aria-label=\"Filter memories\">");
        foreach (var (name, label) in FilterFields)
        {
            html.Add($"<label>{label}<input name=\"{name}\" value=\"{query[name].ToString()}\"></label>");
        }
        html.Add($"<label>Tier<select name=\"tier\"><option value=\"\">any</option>");
        foreach (var tier in new[] { "working", "short_term", "long_term" })
        {
            html.Add($"<option{new Raw(query["tier"].ToString() == tier ? " selected" : "")}>{tier}</option>");
        }
        html.Add($"</select></label>");
        foreach (var (key, value) in query.Where(p => p.Key.StartsWith("metadata.", StringComparison.Ordinal)))
        {
            html.Add($"<label>{key}<input name=\"{key}\" value=\"{value.ToString()}\"></label>");
        }
        html.Add($"<label>Per page<input name=\"limit\" type=\"number\" min=\"1\" max=\"1000\" value=\"{limit}\"></label><button type=\"submit\">Filter</button></form>");

        html.Add($"<div class=\"table-wrap\"><table><caption class=\"sr-only\">Memories</caption><thead><tr><th>Content</th><th>Type</th><th class=\"hide-narrow\">Tier</th><th class=\"hide-narrow\">Scope</th><th class=\"hide-narrow\">Tags</th><th>Updated</th></tr></thead><tbody>");
        foreach (var m in page.Items)
        {
            html.Add($"<tr><td class=\"content\"><a href=\"/ui/memories/{m.Id}\">{Short(m.Content, 240)}</a></td><td>{m.Type}</td><td class=\"hide-narrow\">{m.Tier.ToWire()}</td><td class=\"hide-narrow mono\">{Scope(m)}</td><td class=\"hide-narrow\">");
            Tags(html, m.Tags);
            html.Add($"</td><td class=\"mono\">{m.UpdatedAt}</td></tr>");
        }
        if (page.Items.Count == 0)
        {
            html.Add($"<tr><td colspan=\"6\" class=\"muted\">No memories match.</td></tr>");
        }
        html.Add($"</tbody></table></div>");
        if (page.NextCursor is { } next)
        {
            var nextQuery = string.Join('&', query.Where(p => p.Key != "cursor").Select(p => Uri.EscapeDataString(p.Key) + "=" + Uri.EscapeDataString(p.Value.ToString())));
            html.Add($"<p><a class=\"button secondary\" rel=\"next\" href=\"/ui/memories?{nextQuery + (nextQuery.Length > 0 ? "&" : "") + "cursor=" + Uri.EscapeDataString(next)}\">Next page</a></p>");
        }
        if (caller.Role >= Role.Write)
        {
            AddForm(http, html, filter);
            html.Add($"<h2>Delete by scope</h2><form class=\"card filters\" method=\"post\" action=\"/ui/memories/bulk-delete\">{UiPage.Antiforgery(http)}");
            foreach (var (name, label) in FilterFields.Take(4))
            {
                html.Add($"<label>{label}<input name=\"{name}\" value=\"{query[name].ToString()}\"></label>");
            }
            html.Add($"<button type=\"submit\" class=\"secondary\">Count first (dry run)</button></form>");
        }
        return UiPage.Render(http, "Memories", "/ui/memories", html);
    }

    private static void AddForm(HttpContext http, HtmlBuilder html, MemoryFilter filter)
    {
        html.Add($"<h2>Add a memory</h2><form class=\"card\" id=\"add\" method=\"post\" action=\"/ui/memories\">{UiPage.Antiforgery(http)}");
        html.Add($"<label>Content<textarea name=\"content\" required></textarea></label><div class=\"filters\" style=\"display:grid\">");
        html.Add($"<label>Type<input name=\"type\" placeholder=\"fact\"></label><label>Tags (comma)<input name=\"tags\"></label><label>Entities (comma)<input name=\"entities\"></label>");
        html.Add($"<label>User<input name=\"user_id\" value=\"{filter.UserId}\"></label><label>Agent<input name=\"agent_id\" value=\"{filter.AgentId}\"></label>");
        html.Add($"<label>Importance<input name=\"importance\" type=\"number\" min=\"0\" max=\"1\" step=\"0.05\"></label><button type=\"submit\">Add</button></div></form>");
    }

    public static async Task<IResult> CreateAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var form = await UiPage.ReadFormAsync(http, ct);
        var request = new NewMemory
        {
            Content = UiPage.Field(form, "content"),
            Type = UiPage.Field(form, "type"),
            Tags = List(UiPage.Field(form, "tags")),
            Entities = List(UiPage.Field(form, "entities")),
            UserId = UiPage.Field(form, "user_id"),
            AgentId = UiPage.Field(form, "agent_id"),
            Importance = Number(UiPage.Field(form, "importance"), "importance"),
        };
        var written = await memories.CreateAsync(http.GetCaller(), request, DuplicatePolicy.Return, ct);
        return UiPage.SeeOther($"/ui/memories/{written.Memory.Id}?saved=" + (written.Duplicate ? "duplicate" : "created"));
    }

    public static async Task<IResult> DetailAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        var query = UiPage.Filled(http.Request.Query);
        QueryParser.RefuseAllExcept(query, "saved");
        var caller = http.GetCaller();
        var memory = await memories.GetAsync(caller, id, ct);
        var history = await memories.GetHistoryAsync(caller, id, ct);
        var saved = QueryParser.Single(query, "saved") switch
        {
            "created" => "Added.",
            "duplicate" => "That content was already stored: this is the existing memory.",
            "updated" => $"Saved as version {memory.Version}.",
            _ => null,
        };
        return Detail(http, memory, history, saved, null, null);
    }

    private static IResult Detail(HttpContext http, Memory memory, IReadOnlyList<HistoryEntry> history, string? ok, string? error, IFormCollection? attempted, int status = 200)
    {
        var caller = http.GetCaller();
        var html = new HtmlBuilder();
        UiPage.Notice(html, ok, error);
        html.Add($"<div class=\"card\"><p class=\"content\" style=\"white-space:pre-wrap\" id=\"memory-content\">{memory.Content}</p><table><tbody>");
        Row(html, "Id", memory.Id);
        Row(html, "Type", memory.Type);
        Row(html, "Tier", memory.Tier.ToWire());
        Row(html, "Importance", memory.Importance.ToString("0.###", CultureInfo.InvariantCulture));
        Row(html, "Valence", memory.Valence?.ToString("0.###", CultureInfo.InvariantCulture));
        Row(html, "Scope", Scope(memory));
        Row(html, "Source", memory.Source);
        html.Add($"<tr><th>Tags</th><td>");
        Tags(html, memory.Tags);
        html.Add($"</td></tr><tr><th>Entities</th><td>");
        foreach (var e in memory.Entities)
        {
            html.Add($"<a class=\"tag\" href=\"/ui/graph?entity={Uri.EscapeDataString(e)}\">{e}</a>");
        }
        html.Add($"</td></tr>");
        Row(html, "Metadata", memory.Metadata.ValueKind == JsonValueKind.Undefined ? null : memory.Metadata.GetRawText());
        Row(html, "Created", Time(memory.CreatedAt));
        Row(html, "Updated", Time(memory.UpdatedAt));
        Row(html, "Expires", memory.ExpiresAt is { } x ? Time(x) : null);
        Row(html, "Accessed", $"{memory.AccessCount} times" + (memory.LastAccessedAt is { } la ? ", last " + Time(la) : ""));
        Row(html, "Superseded by", memory.SupersededBy);
        Row(html, "Version", memory.Version.ToString(CultureInfo.InvariantCulture));
        html.Add($"</tbody></table></div>");

        if (caller.Role >= Role.Write)
        {
            string Value(string name, string? current) => attempted is not null && attempted.TryGetValue(name, out var v) ? v.ToString() : current ?? "";
            html.Add($"<h2>Edit</h2><form class=\"card\" method=\"post\" action=\"/ui/memories/{memory.Id}\" id=\"edit\">{UiPage.Antiforgery(http)}");
            html.Add($"<input type=\"hidden\" name=\"version\" value=\"{memory.Version}\">");
            html.Add($"<label>Content<textarea name=\"content\" required>{Value("content", memory.Content)}</textarea></label><div class=\"filters\" style=\"display:grid\">");
            html.Add($"<label>Type<input name=\"type\" value=\"{Value("type", memory.Type)}\"></label>");
            html.Add($"<label>Tier<select name=\"tier\">");
            foreach (var tier in new[] { "working", "short_term", "long_term" })
            {
                html.Add($"<option{new Raw(Value("tier", memory.Tier.ToWire()) == tier ? " selected" : "")}>{tier}</option>");
            }
            html.Add($"</select></label><label>Importance<input name=\"importance\" type=\"number\" min=\"0\" max=\"1\" step=\"0.01\" value=\"{Value("importance", memory.Importance.ToString("0.###", CultureInfo.InvariantCulture))}\"></label>");
            html.Add($"<label>Tags (comma)<input name=\"tags\" value=\"{Value("tags", string.Join(", ", memory.Tags))}\"></label>");
            html.Add($"<label>Entities (comma)<input name=\"entities\" value=\"{Value("entities", string.Join(", ", memory.Entities))}\"></label>");
            html.Add($"<button type=\"submit\">Save</button></div></form>");
            html.Add($"<form method=\"post\" action=\"/ui/memories/{memory.Id}/delete\" data-confirm=\"Delete this memory?\">{UiPage.Antiforgery(http)}<button class=\"danger\" type=\"submit\">Delete</button></form>");
        }

        html.Add($"<h2>History</h2><ol class=\"timeline\" reversed>");
        foreach (var entry in history.Reverse())
        {
            html.Add($"<li><strong>{entry.Event}</strong> · version {entry.Version} · <span class=\"mono\">{entry.At}</span> · {entry.Actor}");
            Diff(html, entry);
            html.Add($"</li>");
        }
        html.Add($"</ol>");
        return UiPage.Render(http, "Memory", "/ui/memories", html, status);
    }

    /// <summary>What changed in a version: each field with its old value struck through and its new value.</summary>
    private static void Diff(HtmlBuilder html, HistoryEntry entry)
    {
        if (entry.Changes.ValueKind != JsonValueKind.Object || entry.Event != HistoryEvents.Updated)
        {
            return;
        }
        html.Add($"<dl class=\"diff\">");
        foreach (var field in entry.Changes.EnumerateObject())
        {
            var from = field.Value.ValueKind == JsonValueKind.Object && field.Value.TryGetProperty("from", out var f) ? Show(f) : "";
            var to = field.Value.ValueKind == JsonValueKind.Object && field.Value.TryGetProperty("to", out var t) ? Show(t) : Show(field.Value);
            html.Add($"<dt>{field.Name}</dt><dd><del>{from}</del> <ins>{to}</ins></dd>");
        }
        html.Add($"</dl>");
    }

    private static string Show(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString() ?? "",
        JsonValueKind.Null or JsonValueKind.Undefined => "(none)",
        _ => value.GetRawText(),
    };

    public static async Task<IResult> UpdateAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var form = await UiPage.ReadFormAsync(http, ct);
        var version = long.TryParse(UiPage.Field(form, "version"), NumberStyles.None, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new ValidationException("version", "the form must carry the version it edits");
        var tier = UiPage.Field(form, "tier");
        MemoryTier? parsedTier = tier is null ? null : MemoryTiers.TryParse(tier, out var t) ? t : throw new ValidationException("tier", $"tier must be one of {MemoryTiers.Allowed}");
        var patch = new MemoryPatch
        {
            Content = UiPage.Field(form, "content") ?? throw new ValidationException("content", "content must not be empty"),
            Type = UiPage.Field(form, "type"),
            Tier = parsedTier,
            Importance = Number(UiPage.Field(form, "importance"), "importance"),
            Tags = List(UiPage.Field(form, "tags")) ?? [],
            Entities = List(UiPage.Field(form, "entities")) ?? [],
        };
        var caller = http.GetCaller();
        try
        {
            await memories.UpdateAsync(caller, id, patch, version, ct);
        }
        catch (PreconditionFailedException e)
        {
            // A stale edit: show the memory as it is now, with what was typed kept in the form and the conflict named.
            var current = await memories.GetAsync(caller, id, ct);
            var history = await memories.GetHistoryAsync(caller, id, ct);
            return Detail(http, current, history, null,
                $"Conflict: this memory changed while you edited it (you edited version {version}, it is now version {e.CurrentVersion}). " +
                "The form below holds your text over the current version; review it and save again.", form, 409);
        }
        return UiPage.SeeOther($"/ui/memories/{Uri.EscapeDataString(id)}?saved=updated");
    }

    public static async Task<IResult> DeleteAsync(string id, HttpContext http, MemoryService memories, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        await UiPage.ReadFormAsync(http, ct);
        await memories.DeleteAsync(http.GetCaller(), id, ct);
        return UiPage.SeeOther("/ui/memories?deleted=" + Uri.EscapeDataString(id));
    }

    /// <summary>Delete by scope: the first post counts what would go (a dry run), the second (confirm=true) deletes.</summary>
    public static async Task<IResult> BulkDeleteAsync(HttpContext http, MemoryService memories, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var form = await UiPage.ReadFormAsync(http, ct);
        var filter = new MemoryFilter
        {
            UserId = UiPage.Field(form, "user_id"),
            AgentId = UiPage.Field(form, "agent_id"),
            SessionId = UiPage.Field(form, "session_id"),
            Namespace = UiPage.Field(form, "namespace"),
        };
        if (!filter.HasScope)
        {
            throw new ValidationException("user_id", "a bulk delete needs at least one scope: user, agent, session or namespace");
        }
        var caller = http.GetCaller();
        var html = new HtmlBuilder();
        var described = string.Join(", ", new[] { ("user", filter.UserId), ("agent", filter.AgentId), ("session", filter.SessionId), ("namespace", filter.Namespace) }
            .Where(p => p.Item2 is not null).Select(p => $"{p.Item1} {p.Item2}"));
        if (UiPage.Field(form, "confirm") == "true")
        {
            var result = await memories.DeleteManyAsync(caller, filter, confirm: true, ct);
            http.Audit(AuditActions.MemoriesBulkDelete, described, $"{result.Deleted} deleted (UI)");
            UiPage.Notice(html, $"Deleted {result.Deleted} memories of {described}.", null);
        }
        else
        {
            var count = (await memories.GetStatsAsync(caller, filter, ct)).Memories.Total;
            html.Add($"<div class=\"card\"><p id=\"dry-run\">Dry run: <strong>{count}</strong> memories of {described} would be deleted.</p>");
            html.Add($"<form method=\"post\" action=\"/ui/memories/bulk-delete\" data-confirm=\"Delete {count} memories?\">{UiPage.Antiforgery(http)}<input type=\"hidden\" name=\"confirm\" value=\"true\">");
            foreach (var (name, value) in new[] { ("user_id", filter.UserId), ("agent_id", filter.AgentId), ("session_id", filter.SessionId), ("namespace", filter.Namespace) })
            {
                if (value is not null)
                {
                    html.Add($"<input type=\"hidden\" name=\"{name}\" value=\"{value}\">");
                }
            }
            html.Add($"<button class=\"danger\" type=\"submit\">Delete {count} memories</button> <a href=\"/ui/memories\">Cancel</a></form></div>");
        }
        return UiPage.Render(http, "Delete by scope", "/ui/memories", html);
    }

    internal static void Tags(HtmlBuilder html, IReadOnlyList<string> tags)
    {
        foreach (var tag in tags)
        {
            html.Add($"<a class=\"tag\" href=\"/ui/memories?tags={Uri.EscapeDataString(tag)}\">{tag}</a>");
        }
    }

    internal static string Scope(Memory m) => string.Join(" ", new[] { ("user", m.UserId), ("agent", m.AgentId), ("session", m.SessionId), ("ns", m.Namespace) }
        .Where(p => p.Item2 is not null).Select(p => $"{p.Item1}:{p.Item2}"));

    internal static string Short(string text, int max) => text.Length <= max ? text : text[..max] + "…";

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    private static void Row(HtmlBuilder html, string label, string? value)
    {
        if (!string.IsNullOrEmpty(value))
        {
            html.Add($"<tr><th scope=\"row\">{label}</th><td class=\"mono\">{value}</td></tr>");
        }
    }

    internal static List<string>? List(string? text) => text?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();

    internal static double? Number(string? text, string field) => text is null
        ? null
        : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value)
            ? value
            : throw new ValidationException(field, $"{field} must be a number (got '{UiMemories.Short(text, 40)}')");
}
