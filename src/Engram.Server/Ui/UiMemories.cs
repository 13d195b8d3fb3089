using System.Globalization;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>The memories pages: the filtered listing (a shareable link), one memory with edit, delete and history, add, bulk delete by scope.</summary>
internal static class UiMemories
{
    public static async Task<IResult> ListAsync(HttpContext http, MemoryService memories, UiFlash flash, CancellationToken ct)
    {
        var query = UiPage.Filled(http.Request.Query);
        // "deleted" and "added" are what older links carried for the notice; taken and ignored (the notice comes from UiFlash).
        var filter = QueryParser.Filter(query, "limit", "cursor", "deleted", "added") with { ExcludeSuperseded = true };
        var limit = QueryParser.Int(query, "limit") ?? 50;
        var caller = http.GetCaller();
        var page = await memories.ListAsync(caller, filter, limit, QueryParser.Single(query, "cursor"), ct);

        var done = flash.TakeDeleted(http) is { } deleted ? $"Deleted {deleted}." : null;
        return UiPage.Render<MemoriesPage>(http, new MemoriesPage.Data(query, filter, limit, page, done, caller.Role >= Role.Write));
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
            Entities = Lines(UiPage.Field(form, "entities")),
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

    private static IResult Detail(HttpContext http, Memory memory, IReadOnlyList<HistoryEntry> history, string? ok, string? error, IFormCollection? attempted, int status = 200) =>
        UiPage.Render<MemoryDetailPage>(http, new MemoryDetailPage.Data(memory, history, ok, error, attempted, http.GetCaller().Role >= Role.Write), status);

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
            Entities = Lines(UiPage.Field(form, "entities")) ?? [],
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

    public static async Task<IResult> DeleteAsync(string id, HttpContext http, MemoryService memories, UiFlash flash, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        await UiPage.ReadFormAsync(http, ct);
        await memories.DeleteAsync(http.GetCaller(), id, ct);
        flash.Deleted(http, id);
        return UiPage.SeeOther("/ui/memories");
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
        var parts = new[] { ("user", filter.UserId), ("agent", filter.AgentId), ("session", filter.SessionId), ("namespace", filter.Namespace) }.Where(p => p.Item2 is not null).ToList();
        var described = string.Join(", ", parts.Select(p => $"{p.Item1} {p.Item2}")); // for the audit log
        var shown = string.Join(", ", parts.Select(p => $"{p.Item1} {Isolated(p.Item2!)}")); // for the page
        var scope = new[] { ("user_id", filter.UserId), ("agent_id", filter.AgentId), ("session_id", filter.SessionId), ("namespace", filter.Namespace) }
            .Where(p => p.Item2 is not null).Select(p => (p.Item1, p.Item2!)).ToList();
        if (UiPage.Field(form, "confirm") == "true")
        {
            var result = await memories.DeleteManyAsync(caller, filter, confirm: true, ct);
            http.Audit(AuditActions.MemoriesBulkDelete, described, $"{result.Deleted} deleted (UI)");
            return UiPage.Render<BulkDeletePage>(http, new BulkDeletePage.Data(scope, shown, result.Deleted, result.Deleted));
        }
        var count = (await memories.GetStatsAsync(caller, filter, ct)).Memories.Total;
        return UiPage.Render<BulkDeletePage>(http, new BulkDeletePage.Data(scope, shown, count, null));
    }

    /// <summary>
    /// A stored value set in a sentence, between the Unicode isolate marks (FSI … PDI, what &lt;bdi&gt; does in markup):
    /// a right-to-left override inside a scope name ("alice\u202E") otherwise turned the rest of the sentence around it,
    /// "… would be deleted", backwards on the screen.
    /// </summary>
    internal static string Isolated(string value) => "\u2068" + value + "\u2069";

    internal static string Scope(Memory m) => string.Join(" ", new[] { ("user", m.UserId), ("agent", m.AgentId), ("session", m.SessionId), ("ns", m.Namespace) }
        .Where(p => p.Item2 is not null).Select(p => $"{p.Item1}:{p.Item2}"));

    internal static string Short(string text, int max) => text.Length <= max ? text : text[..max] + "…";

    /// <summary>Tags, comma-separated (a tag cannot hold a comma).</summary>
    internal static List<string>? List(string? text) => text?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();

    /// <summary>
    /// Entity names, one per line: a name may hold a comma ("Acme, Inc.") but no control character, so a line is
    /// unambiguous. (The forms had one comma-separated field, and saving an edit split "Acme, Inc." in two.)
    /// </summary>
    internal static List<string>? Lines(string? text) => text?.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).ToList();

    internal static double? Number(string? text, string field) => text is null
        ? null
        : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value)
            ? value
            : throw new ValidationException(field, $"{field} must be a number (got '{UiMemories.Short(text, 40)}')");
}
