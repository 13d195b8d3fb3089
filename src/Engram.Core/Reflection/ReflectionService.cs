using System.Globalization;
using System.Text;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Indexing;
using Engram.Core.Llm;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Security;
using Microsoft.Extensions.AI;

namespace Engram.Core.Reflection;

/// <summary>
/// Reflections and consolidation. Per scope (a tenant and exact user, agent, session and namespace) with memories changed
/// since its watermark: near-duplicates are found with the vector index (cosine at least
/// <see cref="ReflectionOptions.DuplicateThreshold"/>, same scope) and merged by the model (the kept memory rewritten
/// through <see cref="MemoryService"/>, the other linked duplicate_of it) or, without a model, flagged (the link only);
/// and the model is asked for higher-level insights, written as memories of type <c>reflection</c> linked derived_from
/// their sources. Nothing is ever deleted. A run plans everything first (every model call) and writes only when the
/// whole plan stands, so a model that fails or answers malformed JSON fails the run with its reason and writes nothing.
/// </summary>
public sealed class ReflectionService(EngramEngine engine, LlmAccess llm, ReflectionOptions options)
{
    public const string ReflectionType = "reflection";
    private const string Feature = "reflections (POST /v1/reflect without duplicates_only, engram reflect without --duplicates-only)";

    private readonly SemaphoreSlim _oneRun = new(1, 1);

    public ReflectionOptions Options => options;

    public LlmAccess Llm => llm;

    private IReflectionStore Store => engine.Store as IReflectionStore
        ?? throw new InvalidOperationException($"the {engine.Store.Kind} store keeps no reflection links");

    /// <summary>
    /// One run over the scopes <paramref name="caller"/> sees (every tenant's when <paramref name="allTenants"/>: the
    /// scheduled job and the CLI's --all-tenants), confined like any other write of the caller. Reflections need the model
    /// (<see cref="LlmNotConfiguredException"/> otherwise); <see cref="ReflectRequest.DuplicatesOnly"/> runs without one.
    /// One run at a time in this process.
    /// </summary>
    public async Task<ReflectionReport> RunAsync(Caller caller, ReflectRequest request, bool allTenants = false, CancellationToken ct = default)
    {
        var guard = ScopeGuard.Enter(caller, Role.Write, "run reflections");
        // The scope fields are checked as everywhere (length, control characters, valid Unicode).
        var fields = new MemoryValidator(engine.Limits);
        fields.Field("user_id", request.UserId);
        fields.Field("agent_id", request.AgentId);
        fields.Field("session_id", request.SessionId);
        fields.Field("namespace", request.Namespace);
        if (!request.DryRun)
        {
            engine.Gate.Check("run reflections");
        }
        var filter = guard.Confine(new MemoryFilter
        {
            UserId = request.UserId,
            AgentId = request.AgentId,
            SessionId = request.SessionId,
            Namespace = request.Namespace,
        });
        var model = request.DuplicatesOnly ? llm.Model : llm.Require(Feature);
        await _oneRun.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var plans = await PlanAsync(allTenants ? null : caller.Tenant, filter, model, request.DuplicatesOnly, ct).ConfigureAwait(false);
            if (!request.DryRun)
            {
                foreach (var plan in plans)
                {
                    await ApplyAsync(plan, ct).ConfigureAwait(false);
                }
            }
            var scopes = plans.Select(p => new ScopeReport(p.Scope.UserId, p.Scope.AgentId, p.Scope.SessionId, p.Scope.Namespace, p.Changes.Count,
                p.Reflections.Select(r => new ReflectionWritten(r.WrittenId, r.Content, [.. r.Sources.Select(s => s.Id)])).ToList(),
                p.Duplicates.Select(d => new DuplicateFound(d.Duplicate.Id, d.Kept.Id, Math.Round(d.Similarity, 4),
                    d.Skipped ? DuplicateFound.Skipped : d.Merged is null ? DuplicateFound.Flagged : DuplicateFound.Merged, d.Merged)).ToList())).ToList();
            return new ReflectionReport(request.DryRun, model is not null, plans.Count, plans.Sum(p => p.Changes.Count),
                scopes.Sum(s => s.Reflections.Count), scopes.Sum(s => s.Duplicates.Count(d => d.Action == DuplicateFound.Flagged)),
                scopes.Sum(s => s.Duplicates.Count(d => d.Action == DuplicateFound.Merged)), scopes);
        }
        finally
        {
            _oneRun.Release();
        }
    }

    /// <summary>The links from and to a memory the caller sees (404 otherwise): derived_from, duplicate_of, and the reverse.</summary>
    public async Task<MemoryLinks> GetLinksAsync(Caller caller, string id, CancellationToken ct = default)
    {
        await engine.Memories.GetAsync(caller, id, ct).ConfigureAwait(false); // 404 for a memory outside the caller's scope
        var links = await Store.GetLinksAsync(caller.Tenant, id, ct).ConfigureAwait(false);
        return new MemoryLinks(
            id,
            [.. links.Where(l => l.MemoryId == id && l.Kind == LinkKinds.DerivedFrom).Select(l => l.TargetId)],
            links.Where(l => l.MemoryId == id && l.Kind == LinkKinds.DuplicateOf).Select(l => l.TargetId).FirstOrDefault(),
            [.. links.Where(l => l.TargetId == id && l.Kind == LinkKinds.DerivedFrom).Select(l => l.MemoryId)],
            [.. links.Where(l => l.TargetId == id && l.Kind == LinkKinds.DuplicateOf).Select(l => l.MemoryId)]);
    }

    /// <summary>
    /// The memories flagged duplicate_of <paramref name="targetId"/> ("*": of any memory), newest flag first, that the
    /// caller sees; paged by <paramref name="cursor"/> (a link position).
    /// </summary>
    public async Task<MemoryPage> ListDuplicatesAsync(Caller caller, string targetId, int? limit, string? cursor, CancellationToken ct = default)
    {
        var guard = ScopeGuard.Enter(caller, Role.Read, "list memories");
        var pageSize = engine.Memories.Limits.CheckListLimit(limit ?? engine.Memories.Limits.DefaultListLimit);
        long? before = null;
        if (!string.IsNullOrEmpty(cursor))
        {
            before = long.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var position) && position > 0
                ? position
                : throw new ValidationException("cursor", "cursor is not one this listing gave");
        }
        if (string.IsNullOrWhiteSpace(targetId))
        {
            throw new ValidationException("duplicate_of", "duplicate_of takes a memory id, or * for every flagged memory");
        }
        var target = targetId == "*" ? null : targetId;
        var items = new List<Memory>();
        string? next = null;
        // Links of memories outside the caller's scope (or deleted) are skipped: read on until the page is full.
        while (items.Count < pageSize)
        {
            var links = await Store.ListLinksAsync(caller.Tenant, LinkKinds.DuplicateOf, target, pageSize, before, ct).ConfigureAwait(false);
            if (links.Count == 0)
            {
                next = null;
                break;
            }
            var memories = await engine.Store.GetManyAsync(caller, [.. links.Select(l => l.MemoryId).Distinct(StringComparer.Ordinal)], ct).ConfigureAwait(false);
            var byId = memories.Where(m => guard.Covers(m)).ToDictionary(m => m.Id, StringComparer.Ordinal);
            foreach (var link in links)
            {
                before = link.Position;
                if (byId.Remove(link.MemoryId, out var memory))
                {
                    items.Add(memory);
                    if (items.Count == pageSize)
                    {
                        break;
                    }
                }
            }
            next = before?.ToString(CultureInfo.InvariantCulture);
            if (links.Count < pageSize && items.Count < pageSize)
            {
                next = null;
                break;
            }
        }
        return new MemoryPage(items, next);
    }

    private async Task<List<ScopePlan>> PlanAsync(string? tenant, MemoryFilter filter, LanguageModel? model, bool duplicatesOnly, CancellationToken ct)
    {
        var scopes = await Store.ListReflectionScopesAsync(tenant, ct).ConfigureAwait(false);
        var marks = await Store.ReadReflectionWatermarksAsync(tenant, ct).ConfigureAwait(false);
        var changed = scopes
            .Where(s => Matches(filter, s.Scope))
            .Select(s => (s.Scope, s.LastSeq, Mark: marks.TryGetValue(s.Scope.WatermarkKey, out var mark) ? mark : 0))
            .Where(s => s.LastSeq > s.Mark)
            .OrderBy(s => s.LastSeq)
            .Take(options.MaxScopesPerRun)
            .ToList();
        var plans = new List<ScopePlan>();
        if (changed.Count == 0)
        {
            return plans;
        }
        // Near-duplicates are looked up in this process's vector index: bring it up to the store first.
        await engine.EnsureIndexedAsync().ConfigureAwait(false);
        await engine.Follower.CatchUpAsync(ct).ConfigureAwait(false);
        foreach (var (scope, _, mark) in changed)
        {
            var changes = await Store.ReadScopeChangesAsync(scope, mark, options.MaxMemoriesPerScope, ct).ConfigureAwait(false);
            if (changes.Count == 0)
            {
                continue;
            }
            var plan = new ScopePlan(scope, changes);
            await FindDuplicatesAsync(plan, ct).ConfigureAwait(false);
            if (model is not null)
            {
                foreach (var duplicate in plan.Duplicates)
                {
                    duplicate.Merged = await MergeAsync(model, duplicate, ct).ConfigureAwait(false);
                }
                if (!duplicatesOnly)
                {
                    await ReflectAsync(model, plan, ct).ConfigureAwait(false);
                }
            }
            plans.Add(plan);
        }
        return plans;
    }

    private static bool Matches(MemoryFilter filter, ReflectionScope scope) =>
        (filter.UserId is null || filter.UserId == scope.UserId) && (filter.AgentId is null || filter.AgentId == scope.AgentId)
        && (filter.SessionId is null || filter.SessionId == scope.SessionId) && (filter.Namespace is null || filter.Namespace == scope.Namespace);

    /// <summary>Pairs each new memory with its nearest earlier neighbour of the same scope at or above the threshold; each memory in one pair at most.</summary>
    private async Task FindDuplicatesAsync(ScopePlan plan, CancellationToken ct)
    {
        var caller = Caller.System("reflect", plan.Scope.Tenant);
        var used = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (memory, _) in plan.Changes)
        {
            if (used.Contains(memory.Id) || await IsFlaggedAsync(plan.Scope.Tenant, memory.Id, ct).ConfigureAwait(false))
            {
                continue;
            }
            var vector = await engine.Embedder.EmbedAsync(memory.Content, ct).ConfigureAwait(false);
            var neighbours = Neighbours(plan.Scope, vector);
            if (neighbours.Count == 0)
            {
                continue;
            }
            var found = await engine.Store.GetManyAsync(caller, [.. neighbours.Select(n => n.Id)], ct).ConfigureAwait(false);
            var byId = found.ToDictionary(m => m.Id, StringComparer.Ordinal);
            foreach (var (id, score) in neighbours)
            {
                if (id == memory.Id || used.Contains(id) || !byId.TryGetValue(id, out var other) || !plan.Scope.Holds(other) || other.Type == ReflectionType
                    || await IsFlaggedAsync(plan.Scope.Tenant, id, ct).ConfigureAwait(false))
                {
                    continue;
                }
                // The older memory is kept; the newer is its duplicate.
                var (kept, duplicate) = Older(other, memory) ? (other, memory) : (memory, other);
                plan.Duplicates.Add(new DuplicatePlan(kept, duplicate, score));
                used.Add(memory.Id);
                used.Add(other.Id);
                break;
            }
        }
    }

    private static bool Older(Memory a, Memory b) => a.CreatedAt != b.CreatedAt ? a.CreatedAt < b.CreatedAt : string.CompareOrdinal(a.Id, b.Id) < 0;

    private async Task<bool> IsFlaggedAsync(string tenant, string id, CancellationToken ct) =>
        (await Store.GetLinksAsync(tenant, id, ct).ConfigureAwait(false)).Any(l => l.MemoryId == id && l.Kind == LinkKinds.DuplicateOf);

    private List<(string Id, double Score)> Neighbours(ReflectionScope scope, float[] vector)
    {
        var filter = new MemoryFilter { UserId = scope.UserId, AgentId = scope.AgentId, SessionId = scope.SessionId, Namespace = scope.Namespace };
        var now = engine.Clock.GetUtcNow();
        return engine.Index.Read(index =>
        {
            var results = new ScoredDoc[options.Neighbours + 1];
            var count = index.SearchVectors(vector, results, new DocFilter(index.Docs, scope.Tenant, filter, now, null));
            var list = new List<(string, double)>(count);
            for (var i = 0; i < count; i++)
            {
                if (results[i].Score >= options.DuplicateThreshold)
                {
                    list.Add((index.Docs[results[i].Doc].Id, results[i].Score));
                }
            }
            return list;
        });
    }

    private static async Task<string> MergeAsync(LanguageModel model, DuplicatePlan duplicate, CancellationToken ct)
    {
        var prompt = new StringBuilder()
            .AppendLine("Two memories about the same user or agent say nearly the same thing. Merge them into one memory that keeps every detail of both,")
            .AppendLine("states it once, in the same person and language, and adds nothing. Answer with JSON: {\"content\": \"<the merged memory>\"}.")
            .AppendLine()
            .Append("Memory A (older): ").AppendLine(duplicate.Kept.Content)
            .Append("Memory B (newer): ").AppendLine(duplicate.Duplicate.Content)
            .ToString();
        var answer = await model.AskJsonAsync<MergeAnswer>([new ChatMessage(ChatRole.User, prompt)], "merge", EngramJson.Options,
            a => string.IsNullOrWhiteSpace(a.Content) ? "content is empty" : a.Content.Length > 8000 ? "content is longer than 8000 characters" : null, ct)
            .ConfigureAwait(false);
        return answer.Content!.Trim();
    }

    private async Task ReflectAsync(LanguageModel model, ScopePlan plan, CancellationToken ct)
    {
        var sources = plan.Changes.Select(c => c.Memory).Where(m => !plan.Duplicates.Any(d => d.Duplicate.Id == m.Id)).ToList();
        if (sources.Count < options.MinNewMemories)
        {
            return;
        }
        var prompt = new StringBuilder()
            .AppendLine("These are memories an AI agent recently stored about one user or context, numbered. Write higher-level insights they support together:")
            .AppendLine("patterns, preferences, goals or lessons that no single memory states. Each insight is one self-contained sentence or two, and names")
            .AppendLine($"the numbers of the memories it is derived from (at least one). At most {options.MaxReflectionsPerScope} insights; none when there is nothing")
            .AppendLine("beyond the memories themselves. importance is 0..1. Answer with JSON: {\"reflections\": [{\"content\": \"...\", \"derived_from\": [1, 2], \"importance\": 0.6}]}.")
            .AppendLine();
        for (var i = 0; i < sources.Count; i++)
        {
            prompt.Append(CultureInfo.InvariantCulture, $"{i + 1}. [{sources[i].Type}] ").AppendLine(sources[i].Content);
        }
        var limit = options.MaxReflectionsPerScope;
        var answer = await model.AskJsonAsync<ReflectionAnswer>([new ChatMessage(ChatRole.User, prompt.ToString())], "reflections", EngramJson.Options,
            a => Validate(a, sources.Count, limit), ct).ConfigureAwait(false);
        foreach (var item in answer.Reflections!.OfType<ReflectionItem>())
        {
            plan.Reflections.Add(new ReflectionPlan(item.Content!.Trim(), [.. item.DerivedFrom!.Distinct().Select(n => sources[n - 1])],
                Math.Clamp(item.Importance ?? 0.6, 0, 1)));
        }
    }

    private static string? Validate(ReflectionAnswer answer, int sources, int limit)
    {
        if (answer.Reflections is null)
        {
            return "reflections is missing";
        }
        if (answer.Reflections.Count > limit)
        {
            return $"at most {limit} reflections";
        }
        foreach (var item in answer.Reflections)
        {
            if (item is null || string.IsNullOrWhiteSpace(item.Content))
            {
                return "a reflection has no content";
            }
            if (item.Content.Length > 8000)
            {
                return "a reflection is longer than 8000 characters";
            }
            if (item.DerivedFrom is not { Count: > 0 })
            {
                return "a reflection names no memory in derived_from";
            }
            if (item.DerivedFrom.Any(n => n < 1 || n > sources))
            {
                return $"derived_from holds numbers of the memories listed, 1 to {sources}";
            }
            if (item.Importance is < 0 or > 1)
            {
                return "importance must be between 0 and 1";
            }
        }
        return null;
    }

    private async Task ApplyAsync(ScopePlan plan, CancellationToken ct)
    {
        var scope = plan.Scope;
        var caller = Caller.System("reflect", scope.Tenant);
        var now = engine.Clock.GetUtcNow();
        var ownWrites = new HashSet<long>();
        foreach (var duplicate in plan.Duplicates)
        {
            if (duplicate.Merged is { } merged && merged != duplicate.Kept.Content)
            {
                try
                {
                    // Written only over the version the model merged: an edit made while it worked would otherwise be lost.
                    var result = await engine.Memories.UpdateAsync(caller, duplicate.Kept.Id, new MemoryPatch { Content = merged }, duplicate.Kept.Version, ct)
                        .ConfigureAwait(false);
                    ownWrites.Add(result.Seq);
                }
                catch (Exception ex) when (ex is PreconditionFailedException or NotFoundException)
                {
                    // The pair is left as it is; that change is past the watermark, so the next run reads the pair again.
                    duplicate.Skipped = true;
                    continue;
                }
            }
            await Store.AddLinksAsync(scope.Tenant, [new MemoryLink(duplicate.Duplicate.Id, LinkKinds.DuplicateOf, duplicate.Kept.Id, now)], ct).ConfigureAwait(false);
        }
        foreach (var reflection in plan.Reflections)
        {
            var metadata = JsonSerializer.SerializeToElement(new Dictionary<string, object>
            {
                [LinkKinds.DerivedFrom] = reflection.Sources.Select(s => s.Id).ToArray(),
            });
            var written = await engine.Memories.CreateAsync(caller, new NewMemory
            {
                Content = reflection.Content,
                Type = ReflectionType,
                Importance = reflection.Importance,
                Source = "reflection",
                Metadata = metadata,
                UserId = scope.UserId,
                AgentId = scope.AgentId,
                SessionId = scope.SessionId,
                Namespace = scope.Namespace,
            }, DuplicatePolicy.Return, ct).ConfigureAwait(false);
            reflection.WrittenId = written.Memory.Id;
            await Store.AddLinksAsync(scope.Tenant, [.. reflection.Sources.Select(s => new MemoryLink(written.Memory.Id, LinkKinds.DerivedFrom, s.Id, now))], ct)
                .ConfigureAwait(false);
        }
        // The watermark moves past what was read, and past this run's own writes unless someone else wrote to the scope meanwhile.
        var read = plan.Changes[^1].Seq;
        var after = await Store.ReadScopeChangesAsync(scope, read, 1000, ct).ConfigureAwait(false);
        var mark = after.Count > 0 && after.Count < 1000 && after.All(c => ownWrites.Contains(c.Seq)) ? after[^1].Seq : read;
        await Store.SetReflectionWatermarkAsync(scope, mark, now, ct).ConfigureAwait(false);
    }

    private sealed class ScopePlan(ReflectionScope scope, IReadOnlyList<SequencedMemory> changes)
    {
        public ReflectionScope Scope { get; } = scope;

        public IReadOnlyList<SequencedMemory> Changes { get; } = changes;

        public List<DuplicatePlan> Duplicates { get; } = [];

        public List<ReflectionPlan> Reflections { get; } = [];
    }

    private sealed class DuplicatePlan(Memory kept, Memory duplicate, double similarity)
    {
        public Memory Kept { get; } = kept;

        public Memory Duplicate { get; } = duplicate;

        public double Similarity { get; } = similarity;

        public string? Merged { get; set; }

        /// <summary>Not applied: the kept memory changed or went while the model merged.</summary>
        public bool Skipped { get; set; }
    }

    private sealed class ReflectionPlan(string content, IReadOnlyList<Memory> sources, double importance)
    {
        public string Content { get; } = content;

        public IReadOnlyList<Memory> Sources { get; } = sources;

        public double Importance { get; } = importance;

        public string? WrittenId { get; set; }
    }

    internal sealed record MergeAnswer(string? Content);

    internal sealed record ReflectionAnswer(List<ReflectionItem?>? Reflections);

    internal sealed record ReflectionItem(string? Content, List<int>? DerivedFrom, double? Importance);
}

/// <summary>A memory's links: what it was derived from and is a duplicate of, and what was derived from it or flagged as its duplicate.</summary>
public sealed record MemoryLinks(string Id, IReadOnlyList<string> DerivedFrom, string? DuplicateOf, IReadOnlyList<string> Derived, IReadOnlyList<string> Duplicates);
