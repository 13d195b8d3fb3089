using Engram.Core.Common;
using Engram.Core.Configuration;
using Engram.Core.Search;
using Engram.Core.Security;
using Engram.Core.Storage;

namespace Engram.Core.Memories;

/// <summary>
/// The one facade over memories, called by REST, the CLI (in process) and later MCP, so behaviour
/// cannot drift between them. Write path: validate → normalise → hash → (store: duplicate check in
/// scope → one transaction of memory + history + change log) → acknowledge. Every method opens a
/// <see cref="ScopeGuard"/> first: the caller's role is checked and a scoped caller is confined to its
/// scope (filters narrowed, writes stamped, memories outside it reported as missing).
/// </summary>
public sealed class MemoryService(IMemoryStore store, MemoryLimits limits, TimeProvider clock, WriteWatermark? watermark = null, Operations.WriteGate? gate = null)
{
    /// <summary>How far in the future a created_at may be (the caller's clock ahead of the server's); imports allow the same.</summary>
    internal static readonly TimeSpan AllowedClockSkew = TimeSpan.FromMinutes(5);

    private readonly MemoryValidator _validate = new(limits);

    public IMemoryStore Store { get; } = store;

    public MemoryLimits Limits => _validate.Limits;

    /// <summary>The highest sequence number this service acknowledged (searches catch up to it).</summary>
    public WriteWatermark Watermark { get; } = watermark ?? new WriteWatermark();

    /// <summary>Closes writes in read-only mode and while the process sheds load (a private open one when none is given).</summary>
    public Operations.WriteGate Gate { get; } = gate ?? new Operations.WriteGate();

    public async Task<WriteResult> CreateAsync(Caller caller, NewMemory request, DuplicatePolicy policy = DuplicatePolicy.Return, CancellationToken ct = default)
    {
        var guard = Writing(caller, "create memories");
        // A duplicate is looked for in the stamped scope only, so it can never be another scope's memory.
        var memory = Build(guard.Stamp(request), clock.GetUtcNow());
        return Acknowledge(await Store.CreateAsync(caller, memory, policy, ct).ConfigureAwait(false));
    }

    /// <summary>
    /// Creates up to <see cref="MemoryLimits.MaxBatchItems"/> memories in one transaction. An item that
    /// fails validation is reported in place and does not stop the others.
    /// </summary>
    public async Task<IReadOnlyList<BatchItemResult>> CreateBatchAsync(Caller caller, IReadOnlyList<NewMemory?> items, DuplicatePolicy policy = DuplicatePolicy.Return, CancellationToken ct = default)
    {
        var guard = Writing(caller, "create memories");
        CheckBatchSize(items.Count);
        // An item naming another scope refuses the whole batch (403): nothing of a batch that tries to
        // write outside the key's scope is stored, unlike a validation error, which fails its item alone.
        var stamped = items.Select((item, i) => item is null ? null : guard.Stamp(item, $"items[{i}].")).ToList();

        var now = clock.GetUtcNow();
        var results = new BatchItemResult?[items.Count];
        var valid = new List<Memory>(items.Count);
        var positions = new List<int>(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            try
            {
                valid.Add(Build(stamped[i] ?? throw new ValidationException("items", "an item is null"), now));
                positions.Add(i);
            }
            catch (ValidationException ex)
            {
                results[i] = new BatchItemResult(BatchItemResult.ErrorStatus, null, null, $"{ex.Field}: {ex.Message}");
            }
        }
        if (valid.Count > 0)
        {
            var stored = await Store.CreateManyAsync(caller, valid, policy, ct).ConfigureAwait(false);
            Watermark.Advance(stored.Max(r => r.Seq ?? 0));
            for (var j = 0; j < stored.Count; j++)
            {
                results[positions[j]] = stored[j];
            }
        }
        return results!;
    }

    /// <summary>
    /// Creates <paramref name="items"/> all or none, in one transaction: every item is validated before anything is
    /// written, and the first that fails refuses the whole request with its <see cref="ValidationException"/>. A memory
    /// with the same content in the same scope is answered as it is (<see cref="DuplicatePolicy.Return"/>): no item can
    /// fail in the store, so the request is never stored in part. Answers each item's memory, in order.
    /// </summary>
    public async Task<IReadOnlyList<WriteResult>> CreateAllAsync(Caller caller, IReadOnlyList<NewMemory> items, CancellationToken ct = default)
    {
        var guard = Writing(caller, "create memories");
        CheckBatchSize(items.Count);
        var now = clock.GetUtcNow();
        var built = items.Select(item => Build(guard.Stamp(item), now)).ToList();
        var stored = await Store.CreateManyAsync(caller, built, DuplicatePolicy.Return, ct).ConfigureAwait(false);
        Watermark.Advance(stored.Max(r => r.Seq ?? 0));
        // The stored rows, read back once: a duplicate is answered with the memory it duplicates.
        var rows = (await Store.GetManyAsync(caller, [.. stored.Select(r => r.Id!).Distinct(StringComparer.Ordinal)], ct).ConfigureAwait(false))
            .ToDictionary(m => m.Id, StringComparer.Ordinal);
        return [.. stored.Select((r, i) => new WriteResult(rows.GetValueOrDefault(r.Id!) ?? built[i], r.Status == BatchItemResult.DuplicateStatus, r.Seq ?? 0))];
    }

    private void CheckBatchSize(int count)
    {
        if (count == 0)
        {
            throw new ValidationException("items", "items must hold at least one memory");
        }
        if (count > Limits.MaxBatchItems)
        {
            throw new ValidationException("items", $"a batch holds at most {Limits.MaxBatchItems} items (got {count})");
        }
    }

    public async Task<Memory> GetAsync(Caller caller, string id, CancellationToken ct = default) =>
        await FindInScopeAsync(ScopeGuard.Enter(caller, Role.Read, "read memories"), id = Ulid.FromAny(id), ct).ConfigureAwait(false) ?? throw NotFound(id);

    public Task<MemoryPage> ListAsync(Caller caller, MemoryFilter filter, int? limit = null, string? cursor = null, CancellationToken ct = default)
    {
        var guard = ScopeGuard.Enter(caller, Role.Read, "list memories");
        filter = guard.Confine(_validate.Filter(filter));
        var pageSize = Limits.CheckListLimit(limit ?? Limits.DefaultListLimit);
        return Store.ListAsync(caller, filter, pageSize, string.IsNullOrEmpty(cursor) ? null : cursor, ct);
    }

    public async Task<WriteResult> UpdateAsync(Caller caller, string id, MemoryPatch patch, long? expectedVersion = null, CancellationToken ct = default)
    {
        id = Ulid.FromAny(id);
        var guard = Writing(caller, "update memories");
        guard.CheckPatch(patch);
        RefuseScopeChange(patch);
        // Before anything that could tell a memory outside the scope from a missing one (a stale If-Match
        // answers with the current version): scope fields never change, so the check stays true.
        if (caller.IsScoped && await FindInScopeAsync(guard, id, ct).ConfigureAwait(false) is null)
        {
            throw NotFound(id);
        }
        if (patch.SupersededBy is { HasValue: true, Value: { } successor })
        {
            patch = patch with { SupersededBy = await SuccessorAsync(guard, id, successor, ct).ConfigureAwait(false) };
        }
        return Acknowledge(await UpdateCoreAsync(guard, id, patch, expectedVersion, ct).ConfigureAwait(false));
    }

    /// <summary>
    /// The id in <c>superseded_by</c>: another memory the caller can see (in either id form). Listings and search hide a
    /// superseded memory, so any text was accepted and a typo made the memory vanish. A successor deleted later leaves
    /// the link as it is, as an extraction's replacement does.
    /// </summary>
    private async Task<string> SuccessorAsync(ScopeGuard guard, string id, string successor, CancellationToken ct)
    {
        var successorId = Ulid.FromAny(_validate.Field("superseded_by", successor)!);
        if (!Ulid.IsValid(successorId))
        {
            throw new ValidationException("superseded_by", "superseded_by must be the id of the memory that replaces this one");
        }
        if (successorId == id)
        {
            throw new ValidationException("superseded_by", "a memory cannot supersede itself");
        }
        if (await FindInScopeAsync(guard, successorId, ct).ConfigureAwait(false) is null)
        {
            throw new ValidationException("superseded_by", $"no memory with id '{successorId}' to supersede this one");
        }
        return successorId;
    }

    private Task<WriteResult> UpdateCoreAsync(ScopeGuard guard, string id, MemoryPatch patch, long? expectedVersion, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        // Validate what can be validated up front so a bad request never waits for the writer.
        var content = patch.Content.HasValue ? _validate.Content(patch.Content.Value) : null;
        var type = patch.Type.HasValue ? _validate.Type(patch.Type.Value) : null;
        var importance = patch.Importance.HasValue ? MemoryValidator.Importance(patch.Importance.Value) : (double?)null;
        var valence = patch.Valence.HasValue ? MemoryValidator.Valence(patch.Valence.Value) : null;
        var tags = patch.Tags.HasValue ? _validate.Tags(patch.Tags.Value) : null;
        var entities = patch.Entities.HasValue ? _validate.Entities(patch.Entities.Value) : null;
        var metadata = patch.Metadata.HasValue ? _validate.Metadata(patch.Metadata.Value) : (System.Text.Json.JsonElement?)null;
        var source = patch.Source.HasValue ? _validate.Field("source", patch.Source.Value) : null;
        var supersededBy = patch.SupersededBy.HasValue ? _validate.Field("superseded_by", patch.SupersededBy.Value) : null;
        DateTimeOffset? expiresAt = null;
        var expiryGiven = patch.ExpiresAt.HasValue || patch.TtlSeconds.HasValue;
        if (expiryGiven)
        {
            expiresAt = MemoryValidator.Expiry(patch.ExpiresAt.HasValue ? patch.ExpiresAt.Value : null,
                patch.TtlSeconds.HasValue ? patch.TtlSeconds.Value : null, now);
        }
        if (patch.Tier.HasValue && patch.Tier.Value is null)
        {
            throw new ValidationException("tier", $"tier cannot be cleared; use one of {MemoryTiers.Allowed}");
        }

        return Store.UpdateAsync(guard.Caller, id, expectedVersion, current =>
        {
            // Checked again inside the write transaction: what is updated is what was checked.
            if (!guard.Covers(current))
            {
                throw NotFound(id);
            }
            var next = current with
            {
                Content = content ?? current.Content,
                ContentHash = content is null ? current.ContentHash : ContentNormalizer.Hash(ContentNormalizer.Normalize(content)),
                Type = type ?? current.Type,
                Tier = patch.Tier.HasValue ? patch.Tier.Value!.Value : current.Tier,
                Importance = importance ?? current.Importance,
                Valence = patch.Valence.HasValue ? valence : current.Valence,
                Tags = tags ?? current.Tags,
                Entities = entities ?? current.Entities,
                Metadata = metadata ?? current.Metadata,
                Source = patch.Source.HasValue ? source : current.Source,
                ExpiresAt = expiryGiven ? expiresAt : current.ExpiresAt,
                ValidFrom = patch.ValidFrom.HasValue ? patch.ValidFrom.Value : current.ValidFrom,
                ValidTo = patch.ValidTo.HasValue ? patch.ValidTo.Value : current.ValidTo,
                SupersededBy = patch.SupersededBy.HasValue ? supersededBy : current.SupersededBy,
                UpdatedAt = now,
            };
            MemoryValidator.Validity(next.ValidFrom, next.ValidTo);
            return next;
        }, ct);
    }

    public Task<long> DeleteAsync(Caller caller, string id, CancellationToken ct = default) => DeleteAsync(caller, id, null, ct);

    /// <summary>
    /// Deletes the memory; with <paramref name="expectedVersion"/> (an If-Match), only while it is at that version, else
    /// <see cref="PreconditionFailedException"/> (a guarded delete of a memory someone changed meanwhile would lose their change).
    /// </summary>
    public async Task<long> DeleteAsync(Caller caller, string id, long? expectedVersion, CancellationToken ct = default)
    {
        id = Ulid.FromAny(id); // a memory id also in its UUID form (the mem0-compatible API shows ids so)
        var guard = Writing(caller, "delete memories");
        if (caller.IsScoped && await FindInScopeAsync(guard, id, ct).ConfigureAwait(false) is null)
        {
            throw NotFound(id);
        }
        var seq = await Store.DeleteAsync(caller, id, expectedVersion, ct).ConfigureAwait(false) ?? throw NotFound(id);
        Watermark.Advance(seq);
        return seq;
    }

    /// <summary>
    /// Deletes every memory matching <paramref name="filter"/>; refuses without a scope filter or without
    /// <paramref name="confirm"/>. Needs the write role (not admin): it never reaches past the caller's
    /// tenant (the store) nor its key's scope (added to the filter, which therefore always has a scope
    /// for a scoped caller: it may clear its own scope).
    /// </summary>
    public async Task<BulkDeleteResult> DeleteManyAsync(Caller caller, MemoryFilter filter, bool confirm, CancellationToken ct = default)
    {
        var guard = Writing(caller, "delete memories");
        filter = guard.Confine(_validate.Filter(filter));
        if (!filter.HasScope)
        {
            throw new ValidationException("user_id", "a bulk delete needs at least one scope filter: user_id, agent_id, session_id or namespace");
        }
        if (!confirm)
        {
            throw new ValidationException("confirm", "a bulk delete must be confirmed (confirm=true over HTTP, --confirm in the CLI)");
        }
        var result = await Store.DeleteManyAsync(caller, filter, ct).ConfigureAwait(false);
        Watermark.Advance(result.LastSeq ?? 0);
        return result;
    }

    public async Task<IReadOnlyList<HistoryEntry>> GetHistoryAsync(Caller caller, string id, CancellationToken ct = default)
    {
        id = Ulid.FromAny(id);
        var guard = ScopeGuard.Enter(caller, Role.Read, "read memory history");
        var history = await Store.GetHistoryAsync(caller, id, ct).ConfigureAwait(false);
        return history.Count > 0 && guard.Covers(history) ? history : throw new NotFoundException($"no memory with id '{id}' has ever existed");
    }

    /// <summary>
    /// Counts of the caller's tenant (and scope). The store-wide figures (file size, last sequence
    /// number) grow with every tenant's writes, so only admins, who operate the server, get them.
    /// </summary>
    public Task<StoreStatistics> GetStatsAsync(Caller caller, CancellationToken ct = default) =>
        GetStatsAsync(caller, MemoryFilter.None, ct);

    /// <summary>The counts of the memories matching <paramref name="filter"/> (MCP's memory_stats narrows them to a scope).</summary>
    public async Task<StoreStatistics> GetStatsAsync(Caller caller, MemoryFilter filter, CancellationToken ct = default)
    {
        var guard = ScopeGuard.Enter(caller, Role.Read, "read statistics");
        var stats = await Store.GetStatsAsync(caller, guard.Confine(_validate.Filter(filter)), ct).ConfigureAwait(false);
        if (caller.Role < Role.Admin)
        {
            return new StoreStatistics(stats, null, null);
        }
        var lastSeq = await Store.GetLastSeqAsync(ct).ConfigureAwait(false);
        return new StoreStatistics(stats, Store.SizeBytes, lastSeq);
    }

    /// <summary>A write: the role check, then the <see cref="Operations.WriteGate"/> (read-only mode, memory budget).</summary>
    private ScopeGuard Writing(Caller caller, string action)
    {
        var guard = ScopeGuard.Enter(caller, Role.Write, action);
        Gate.Check(action);
        return guard;
    }

    private async Task<Memory?> FindInScopeAsync(ScopeGuard guard, string id, CancellationToken ct) =>
        await Store.GetAsync(guard.Caller, id, ct).ConfigureAwait(false) is { } memory && guard.Covers(memory) ? memory : null;

    // The same answer for a memory outside the caller's scope as for one that does not exist.
    private static NotFoundException NotFound(string id) => new($"no memory with id '{id}'");

    private WriteResult Acknowledge(WriteResult result)
    {
        Watermark.Advance(result.Seq);
        return result;
    }

    private Memory Build(NewMemory request, DateTimeOffset now)
    {
        if (request.Messages is not null || request.Infer is not null)
        {
            throw new ValidationException("messages", "messages and infer are for one conversation (POST /v1/memories), not for batches or imports");
        }
        var content = _validate.Content(request.Content);
        var createdAt = request.CreatedAt ?? now;
        if (createdAt > now + AllowedClockSkew)
        {
            throw new ValidationException("created_at", "created_at must not be in the future");
        }
        MemoryValidator.Validity(request.ValidFrom, request.ValidTo);
        return new Memory
        {
            Id = Ulid.NewUlid(now),
            Content = content,
            ContentHash = ContentNormalizer.Hash(ContentNormalizer.Normalize(content)),
            Type = _validate.Type(request.Type),
            Tier = request.Tier ?? MemoryTier.LongTerm,
            Importance = MemoryValidator.Importance(request.Importance),
            Valence = MemoryValidator.Valence(request.Valence),
            Tags = _validate.Tags(request.Tags),
            Entities = _validate.Entities(request.Entities),
            Metadata = _validate.Metadata(request.Metadata),
            UserId = _validate.Field("user_id", request.UserId),
            AgentId = _validate.Field("agent_id", request.AgentId),
            SessionId = _validate.Field("session_id", request.SessionId),
            Namespace = _validate.Field("namespace", request.Namespace),
            Source = _validate.Field("source", request.Source),
            CreatedAt = createdAt,
            UpdatedAt = now,
            ExpiresAt = MemoryValidator.Expiry(request.ExpiresAt, request.TtlSeconds, now),
            ValidFrom = request.ValidFrom,
            ValidTo = request.ValidTo,
            Version = 1,
        };
    }

    private static void RefuseScopeChange(MemoryPatch patch)
    {
        var field = patch.UserId.HasValue ? "user_id"
            : patch.AgentId.HasValue ? "agent_id"
            : patch.SessionId.HasValue ? "session_id"
            : patch.Namespace.HasValue ? "namespace"
            : null;
        if (field is not null)
        {
            throw new ValidationException(field, $"{field} cannot be changed by an update; create the memory in the new scope and delete the old one");
        }
    }
}

/// <summary>How many live memories a tenant has, in all and by type and tier.</summary>
public sealed record MemoryCounts(long Total, IReadOnlyDictionary<string, long> ByType, IReadOnlyDictionary<string, long> ByTier)
{
    /// <summary>Folds live counts by (tier, type), as a store counts them, into the totals by type and by tier (names in ordinal order).</summary>
    public static MemoryCounts FromTierAndType(IReadOnlyDictionary<(string Tier, string Type), long> counts)
    {
        var byType = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var byTier = new SortedDictionary<string, long>(StringComparer.Ordinal);
        long total = 0;
        foreach (var ((tier, type), n) in counts)
        {
            if (n <= 0)
            {
                continue;
            }
            byType[type] = byType.GetValueOrDefault(type) + n;
            byTier[tier] = byTier.GetValueOrDefault(tier) + n;
            total += n;
        }
        return new MemoryCounts(total, new Dictionary<string, long>(byType, StringComparer.Ordinal), new Dictionary<string, long>(byTier, StringComparer.Ordinal));
    }
}

/// <summary>The body of <c>GET /v1/stats</c>; <see cref="Index"/> is filled where indexes run (the server).</summary>
/// <remarks><c>StoreBytes</c>, <c>LastSeq</c> and <c>Index</c> describe the whole store (every tenant): admins only, null (left out) otherwise.</remarks>
public sealed record StoreStatistics(
    MemoryCounts Memories,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] long? StoreBytes,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] long? LastSeq)
{
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public IndexStatistics? Index { get; init; }

    /// <summary>How this instance hears of commits by others (PostgreSQL's LISTEN/NOTIFY); absent where followers only poll.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public ChangeFeedStatistics? ChangeFeed { get; init; }

    /// <summary>The optional language model: whether one is configured and which (for admins its calls, errors and latency).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public LlmStatistics? Llm { get; init; }

    /// <summary>Which backend holds the store ("sqlite", "postgres").</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public StoreDescription? Store { get; init; }
}

/// <summary>
/// The commit listener of this instance: <c>Listening</c> false means writes of other instances reach its
/// indexes by the poll (within half a second) instead of at once, since <c>DownSince</c>, for <c>DownReason</c>.
/// <c>Connects</c> above one counts reconnections.
/// </summary>
public sealed record ChangeFeedStatistics(bool Listening, DateTimeOffset? DownSince, string? DownReason, long Notifications, long Connects);

/// <summary>The language model as /v1/stats shows it; <see cref="Status"/> for admins only.</summary>
public sealed record LlmStatistics(bool Configured, string? Model)
{
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public Llm.LlmStatus? Status { get; init; }

    /// <summary>Extraction jobs of the caller's tenant queued or running (the queue depth).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public long? ExtractionQueue { get; init; }
}

/// <summary>The backend of the store, as /v1/stats shows it: which, whether it answered the stats request, and (admins) where and how fast.</summary>
public sealed record StoreDescription(string Kind)
{
    /// <summary>Whether the store answered just now (false: the database is away; writes get 503, searches answer from the indexes).</summary>
    public bool Reachable { get; init; } = true;

    /// <summary>"index" when the store was away and the counts come from the in-memory indexes; absent when the store gave them.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? CountsFrom { get; init; }

    /// <summary>Admins: <c>host:port/database</c> (never the user or password), or the SQLite file.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Location { get; init; }

    /// <summary>Admins: how long the store took to answer a trivial statement, in milliseconds (absent when it did not answer).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public double? RoundTripMs { get; init; }

    /// <summary>Admins: why the store did not answer (a connection error, a SQLSTATE; never SQL text).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Error { get; init; }
}

/// <summary>How far the derived indexes are: the change-log position they reflect and the embedding backlog.</summary>
/// <remarks>
/// <c>StagedVectors</c>: embedded, searched exactly, not yet in the HNSW graph. <c>EmbeddedVectors</c>: documents this
/// process embedded since it started (vectors read from the store are not counted); <c>EmbeddingRate</c>: vectors per
/// second of the background embedding worker while it works (a moving average; 0 before its first batch).
/// </remarks>
public sealed record IndexStatistics(long AppliedSeq, int Documents, int Vectors, int PendingEmbeddings, int StagedVectors, string EmbeddingModel, string? LastEmbeddingError,
    long EmbeddedVectors = 0, double EmbeddingRate = 0)
{
    /// <summary>How far the indexes are behind the store's change log (entries, and for how long).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public IndexLag? Lag { get; init; }
}

/// <summary>
/// Change-log entries the indexes have not applied yet, and for how many seconds they have been behind (0 when caught
/// up); <c>CaughtUpAt</c>: when they last reflected the whole log.
/// </summary>
public sealed record IndexLag(long Entries, double AgeSeconds, DateTimeOffset? CaughtUpAt);
