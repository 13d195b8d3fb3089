using System.Globalization;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Core.KeyValue;
using Engram.Core.Llm;
using Engram.Core.Memories;
using Engram.Core.Operations;
using Engram.Core.Reflection;
using Engram.Core.Security;
using Engram.Core.Storage.Sqlite;

namespace Engram.Core.Storage.Transfer;

/// <summary>
/// The records of an Engram export, read from their JSON lines with every field checked (a clear error
/// names the field that is missing or wrong): what each backend's import writes, as it was. Each field is
/// held to the rule the API's write path holds it to, through the same validators (<see cref="ImportValidation"/>),
/// so a record the API could not have stored is refused rather than written; what the validators normalise
/// (trimmed tags, entity names in NFC) is written normalised, and the content hash is computed from the content,
/// never taken from the file.
/// </summary>
public static class ImportRecords
{
    /// <param name="nowMs">
    /// The importing store's time, which created_at must not be after (beyond the API's clock skew); null checks no time
    /// against now (a backup's verification, which may run long after the backup was made, on another clock).
    /// </param>
    public static ImportedMemory Memory(JsonElement r, ImportValidation rules, long? nowMs)
    {
        var check = rules.Memories;
        var tenant = ImportJson.Tenant(r);
        var id = Id(r, "id");
        var content = check.Content(ImportJson.Text(r, "content"));
        var type = check.Type(ImportJson.Text(r, "type"));
        var tier = ImportJson.Text(r, "tier");
        if (!MemoryTiers.TryParse(tier, out _))
        {
            throw new ValidationException("tier", $"unknown tier '{tier}'");
        }
        var importance = MemoryValidator.Importance(ImportJson.Number(r, "importance"));
        var valence = MemoryValidator.Valence(ImportJson.NumberOrNull(r, "valence"));
        var metadata = ImportJson.Field(r, "metadata");
        if (metadata.ValueKind != JsonValueKind.Object)
        {
            throw new ValidationException("metadata", "metadata must be an object");
        }
        check.Metadata(metadata);
        var (tags, tagsJson) = Checked(r, "tags", given => check.Tags(WithoutInvisibleOnlyTags(given)));
        var (entities, entitiesJson) = Checked(r, "entities", check.Entities);
        string?[] scopes = [.. ExportFields.MemoryScopes.Select(f => check.Field(f, ImportJson.TextOrNull(r, f), rules.KeepsStoredIdentifiers))];
        var validFrom = ImportJson.TimeOrNull(r, "valid_from");
        var validTo = ImportJson.TimeOrNull(r, "valid_to");
        MemoryValidator.Validity(FromMs(validFrom), FromMs(validTo));
        var accessCount = ImportJson.Integer(r, "access_count");
        if (accessCount < 0)
        {
            throw new ValidationException("access_count", $"'access_count' must not be negative (got {accessCount})");
        }
        var (createdAt, updatedAt) = MemoryTimes(r, nowMs);
        var version = Version(r, "version");
        var history = MemoryHistory(r, version);
        // Format version 2; a version 1 record has no superseded_by: the memory is current. Only the memory's own id is
        // refused, as the API refuses it. An id of no memory in the store or the file is not: the API leaves the link when
        // the successor is deleted later (an extraction's replacement too), so a sound store exports such links, and stores
        // of older versions took any text there.
        var supersededBy = check.Field("superseded_by", ImportJson.TextOrNull(r, "superseded_by"));
        if (supersededBy is not null && Ulid.FromAny(supersededBy) == id)
        {
            throw new ValidationException("superseded_by", "superseded_by is the memory's own id: a memory cannot supersede itself");
        }
        return new ImportedMemory(tenant, id, content, ContentNormalizer.Hash(ContentNormalizer.Normalize(content)), type, tier, importance, valence,
            tags, tagsJson, metadata.GetRawText(), entities, entitiesJson, scopes,
            createdAt, updatedAt, ImportJson.TimeOrNull(r, "last_accessed_at"), accessCount,
            ImportJson.TimeOrNull(r, "expires_at"), validFrom, validTo, version, history)
        {
            SupersededBy = supersededBy,
        };
    }

    /// <summary>
    /// created_at and updated_at as the API sets them: created_at given by the caller but not in the future (beyond
    /// <see cref="MemoryService.AllowedClockSkew"/>), updated_at the server's time of the last write. A created_at up to
    /// that skew ahead of the server's clock is stored with updated_at = now, so updated_at may be before created_at by
    /// as much, not more.
    /// </summary>
    private static (long CreatedAt, long UpdatedAt) MemoryTimes(JsonElement r, long? nowMs)
    {
        var createdAt = ImportJson.Time(r, "created_at");
        var updatedAt = ImportJson.Time(r, "updated_at");
        var skew = (long)MemoryService.AllowedClockSkew.TotalMilliseconds;
        if (nowMs is { } now && createdAt > now + skew)
        {
            throw new ValidationException("created_at", $"created_at must not be in the future (got {ExportFields.FormatTime(createdAt)})");
        }
        if (updatedAt < createdAt - skew)
        {
            throw new ValidationException("updated_at", $"updated_at ({ExportFields.FormatTime(updatedAt)}) must not be before created_at ({ExportFields.FormatTime(createdAt)})");
        }
        return (createdAt, updatedAt);
    }

    /// <summary>
    /// A memory's history as its writes make it: one entry per version, 1 to the memory's version in order (created at
    /// version 1, one "updated" per later version; nothing deletes a live memory's history), so a history that is empty,
    /// shorter or longer than the version, or out of order was edited.
    /// </summary>
    private static List<ImportedMemoryHistory> MemoryHistory(JsonElement r, long version)
    {
        var history = new List<ImportedMemoryHistory>();
        var i = 0;
        foreach (var entry in ImportJson.Array(r, "history"))
        {
            var field = $"history[{i}].version";
            var entryVersion = Version(entry, field);
            if (entryVersion != i + 1)
            {
                throw new ValidationException(field, $"'{field}' must be {i + 1} (a memory's history has one entry per version, in order; got {entryVersion})");
            }
            history.Add(new ImportedMemoryHistory(ImportJson.Text(entry, "event"), ImportJson.Text(entry, "actor"), ImportJson.Time(entry, "at"),
                entryVersion, ImportJson.Field(entry, "changes").GetRawText()));
            i++;
        }
        if (history.Count != version)
        {
            throw new ValidationException("history", $"the memory is at version {version} but its history has {history.Count} {(history.Count == 1 ? "entry" : "entries")} " +
                "(one per version: created, then each update)");
        }
        return history;
    }

    /// <summary>
    /// A list field through its validator: the file's own JSON text when the validator keeps the list as it is (so an
    /// export round-trips byte for byte), else the validated list written as the write path writes it.
    /// </summary>
    private static (IReadOnlyList<string> Items, string Json) Checked(JsonElement r, string name, Func<IReadOnlyList<string>, IReadOnlyList<string>> validate)
    {
        var given = ImportJson.StringArray(r, name);
        var valid = validate(given);
        return valid.SequenceEqual(given, StringComparer.Ordinal)
            ? (valid, ImportJson.Field(r, name).GetRawText())
            : (valid, JsonSerializer.Serialize(valid, EngramJson.Options));
    }

    /// <summary>
    /// <paramref name="tags"/> without those made of invisible characters only ("\u200B"): a release before tags were
    /// folded stored them, and the schema 18 migration drops them from a store in place (<see cref="Graph.InvisibleFold.Tags"/>),
    /// so an export of such a store imports as that store now reads, instead of the memory being refused. An empty or
    /// blank tag stays refused, as every release refused it.
    /// </summary>
    private static IReadOnlyList<string> WithoutInvisibleOnlyTags(IReadOnlyList<string> tags)
    {
        return tags.Any(InvisibleOnly) ? [.. tags.Where(t => !InvisibleOnly(t))] : tags;

        static bool InvisibleOnly(string? tag) =>
            tag is { Length: > 0 } && UnicodeText.IndexOfInvisible(tag) >= 0 && MemoryValidator.FoldTag(tag).Length == 0;
    }

    /// <summary>An id Engram made (a memory, a conversation, a job): a ULID, as every write path mints them.</summary>
    private static string Id(JsonElement r, string name)
    {
        var id = ImportJson.Text(r, name);
        return Ulid.IsValid(id) ? id : throw new ValidationException(name, $"'{name}' must be a ULID (26 characters of Crockford base32), as Engram makes ids");
    }

    /// <summary>A version: 1 to <see cref="ImportValidation.MaxVersion"/> (versions start at 1 and grow by one per write).</summary>
    private static long Version(JsonElement r, string field, string name = "version")
    {
        var version = ImportJson.Integer(r, name);
        return version is >= 1 and <= ImportValidation.MaxVersion
            ? version
            : throw new ValidationException(field, $"'{field}' must be 1 to {ImportValidation.MaxVersion} (got {version})");
    }

    public static ImportedLink Link(JsonElement r)
    {
        var kind = ImportJson.Text(r, "link_kind");
        if (kind is not (LinkKinds.DerivedFrom or LinkKinds.DuplicateOf))
        {
            throw new ValidationException("link_kind", $"unknown link_kind '{kind}' (the kinds are {LinkKinds.DerivedFrom}, {LinkKinds.DuplicateOf})");
        }
        return new ImportedLink(ImportJson.Tenant(r), Id(r, "memory_id"), kind, Id(r, "target_id"), ImportJson.Time(r, "created_at"));
    }

    /// <summary>A conversation: its body must be one the extraction wrote (a stored conversation that passes its rules), which a job reads back.</summary>
    public static ImportedConversation Conversation(JsonElement r)
    {
        var id = Id(r, "id");
        // The body as stored: JSON text was written raw, any other text as a string.
        var body = ImportJson.Field(r, "body");
        var text = body.ValueKind == JsonValueKind.String ? body.GetString()! : body.GetRawText();
        UnicodeText.RequireJson(body, "body");
        try
        {
            var stored = JsonSerializer.Deserialize<StoredConversation>(text, EngramJson.Options);
            ConversationExtractor.Check(stored?.Conversation ?? throw new ValidationException("body", "it holds no conversation"));
        }
        catch (Exception ex) when (ex is JsonException or ValidationException)
        {
            throw new ValidationException("body", $"'body' is not a conversation as Engram stores one: {ex.Message}");
        }
        var history = new List<ImportedConversationHistory>();
        foreach (var entry in ImportJson.Array(r, "history"))
        {
            history.Add(new ImportedConversationHistory(ImportJson.Text(entry, "event"), ImportJson.Text(entry, "actor"), ImportJson.Time(entry, "at"),
                ImportJson.TextOrNull(entry, "detail")));
        }
        return new ImportedConversation(ImportJson.Tenant(r), id, text, ImportJson.Time(r, "created_at"), history);
    }

    /// <summary>
    /// An extraction job; its plan, applied decisions and memory ids are checked to be what a worker reads. A job that
    /// was queued or running comes in queued, without a lease, and due at <paramref name="nowMs"/> at the latest.
    /// </summary>
    public static ImportedJob Job(JsonElement r, long nowMs)
    {
        var status = ImportJson.Text(r, "status");
        if (status is not (ExtractionStatus.Queued or ExtractionStatus.Running or ExtractionStatus.Succeeded or ExtractionStatus.Failed))
        {
            throw new ValidationException("status", $"unknown status '{status}' (queued, running, succeeded or failed)");
        }
        var plan = JsonOrNull<ExtractionPlan>(r, "plan", JsonValueKind.Object);
        var applied = JsonOrNull<List<AppliedDecision>>(r, "applied", JsonValueKind.Array);
        var memoryIds = JsonOrNull<List<string>>(r, "memory_ids", JsonValueKind.Array);
        if (memoryIds is not null && JsonSerializer.Deserialize<List<string>>(memoryIds, EngramJson.Options)!.Any(m => m is null || !Ulid.IsValid(m)))
        {
            throw new ValidationException("memory_ids", "'memory_ids' must hold memory ids (ULIDs)");
        }
        var attempts = ImportJson.Integer(r, "attempts");
        if (attempts < 0)
        {
            throw new ValidationException("attempts", "'attempts' must not be negative");
        }
        var updatedAt = ImportJson.Time(r, "updated_at");
        var pending = status is ExtractionStatus.Queued or ExtractionStatus.Running;
        var next = ImportJson.TimeOrNull(r, "next_attempt_at") ?? (pending ? nowMs : updatedAt);
        return new ImportedJob(ImportJson.Tenant(r), Id(r, "id"), Id(r, "conversation_id"), ImportJson.Text(r, "actor"),
            pending ? ExtractionStatus.Queued : status, attempts, pending ? Math.Min(next, nowMs) : next, plan, applied, memoryIds,
            ImportJson.TextOrNull(r, "error"), ImportJson.TextOrNull(r, "model"), ImportJson.Time(r, "created_at"), updatedAt);
    }

    /// <summary>A JSON field (null or absent: null) that must be of <paramref name="kind"/> and read as <typeparamref name="T"/>; its raw text.</summary>
    private static string? JsonOrNull<T>(JsonElement r, string name, JsonValueKind kind)
    {
        if (!r.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind != kind)
        {
            throw new ValidationException(name, $"'{name}' must be {(kind == JsonValueKind.Object ? "an object" : "an array")} or null");
        }
        try
        {
            _ = value.Deserialize<T>(EngramJson.Options);
        }
        catch (JsonException ex)
        {
            throw new ValidationException(name, $"'{name}' is not what an extraction job holds: {ex.Message}");
        }
        return value.GetRawText();
    }

    /// <summary>A key: its name by the REST key rules, its value and every value of its history by the value rules.</summary>
    public static ImportedKeyValue KeyValue(JsonElement r, ImportValidation rules)
    {
        var tenant = ImportJson.StoreTenant(r);
        // A partition's keys take the tenant convention with the caller's tenant, as KvService stores them, not the partition's name.
        var key = StoredKey(ScopeGuard.BaseTenant(tenant), ImportJson.Text(r, "key"), rules.KeepsStoredIdentifiers);
        var value = ImportJson.Field(r, "value");
        KvService.CheckValue(value, rules.MaxKvValueBytes, "value");
        var history = new List<ImportedKeyValueHistory>();
        var i = 0;
        foreach (var entry in ImportJson.Array(r, "history"))
        {
            var field = $"history[{i++}]";
            var old = ImportJson.Field(entry, "value");
            KvService.CheckValue(old, rules.MaxKvValueBytes, field + ".value");
            history.Add(new ImportedKeyValueHistory(ImportJson.Text(entry, "event"), ImportJson.Text(entry, "actor"), ImportJson.Time(entry, "at"),
                Version(entry, field + ".version"), old.ValueKind == JsonValueKind.Null ? null : old.GetRawText(), ImportJson.TimeOrNull(entry, "expires_at")));
        }
        return new ImportedKeyValue(tenant, key, value.GetRawText(), ImportJson.TimeOrNull(r, "expires_at"),
            Version(r, "version"), ImportJson.Time(r, "created_at"), ImportJson.Time(r, "updated_at"), history);
    }

    /// <summary>
    /// A key as the store keeps it (what an export writes): the stored form of a key a caller could write
    /// (<see cref="KvKeys.ValidateForWrite"/>: 1..512 UTF-8 bytes, no control or invisible characters; invisible ones are
    /// kept in a copy of a store, see <see cref="ImportValidation.KeepsStoredIdentifiers"/>), so REST reads, lists and deletes it
    /// under the name it shows. A key of three ':'-separated parts is stored with the tenant inserted, so one stored
    /// without it could never be named.
    /// </summary>
    private static string StoredKey(string tenant, string stored, bool keepsInvisible)
    {
        var key = KvKeys.ToDisplay(tenant, stored);
        if (keepsInvisible)
        {
            KvKeys.Validate(key); // a store's own key, written before invisible characters were refused (ImportValidation.KeepsStoredIdentifiers)
        }
        else
        {
            KvKeys.ValidateForWrite(key);
        }
        var expected = KvKeys.ToStored(tenant, key);
        return string.Equals(expected, stored, StringComparison.Ordinal)
            ? stored
            : throw new ValidationException("key", $"the key '{stored}' is not as a store keeps it: a key of three ':'-separated parts is stored with " +
                $"its tenant as the second part ('{expected}')");
    }

    public static ImportedEntity Entity(JsonElement r)
    {
        var observations = new List<(Observation, long)>();
        var i = 0;
        foreach (var o in ImportJson.Array(r, "observations"))
        {
            var field = $"observations[{i++}]";
            var validFrom = FromMs(ImportJson.TimeOrNull(o, "valid_from"));
            var validTo = FromMs(ImportJson.TimeOrNull(o, "valid_to"));
            GraphValidator.Window(validFrom, validTo, field);
            observations.Add((new Observation
            {
                Content = GraphValidator.ObservationText(ImportJson.Text(o, "content"), field + ".content"),
                ValidFrom = validFrom,
                ValidTo = validTo,
            }, ImportJson.Time(o, "created_at")));
        }
        return new ImportedEntity(ImportJson.StoreTenant(r), GraphValidator.Name(ImportJson.Text(r, "name"), "name"),
            GraphValidator.Type(ImportJson.Text(r, "entity_type"), "entity_type"), ImportJson.Time(r, "created_at"), ImportJson.Time(r, "updated_at"), observations);
    }

    public static ImportedRelation Relation(JsonElement r)
    {
        var validFrom = FromMs(ImportJson.TimeOrNull(r, "valid_from"));
        var validTo = FromMs(ImportJson.TimeOrNull(r, "valid_to"));
        GraphValidator.Window(validFrom, validTo, "relation");
        return new(ImportJson.StoreTenant(r), new Relation
        {
            From = GraphValidator.Name(ImportJson.Text(r, "from"), "from"),
            To = GraphValidator.Name(ImportJson.Text(r, "to"), "to"),
            RelationType = GraphValidator.Type(ImportJson.Text(r, "relation_type"), "relation_type"),
            Weight = GraphValidator.Weight(ImportJson.NumberOrNull(r, "weight"), "weight"),
            ValidFrom = validFrom,
            ValidTo = validTo,
        }, ImportJson.Time(r, "created_at"));
    }

    /// <summary>Largest vector an import takes: wider than any embedding model's (OpenAI's largest is 3,072).</summary>
    public const int MaxVectorDimensions = 16_384;

    /// <summary>Most vectors of one memory version an import takes (one per chunk of a long memory).</summary>
    public const int MaxVectorsPerMemory = 1_024;

    /// <summary>
    /// Stored vectors of one memory version: the base64 must hold exactly count x dims little-endian float32 values,
    /// each finite (one NaN would poison every distance the index computes with it).
    /// </summary>
    public static MemoryVectors Vector(JsonElement r)
    {
        var dims = ImportJson.Integer(r, "dims");
        if (dims is < 1 or > MaxVectorDimensions)
        {
            throw new ValidationException("dims", $"'dims' must be 1 to {MaxVectorDimensions}");
        }
        var count = ImportJson.Integer(r, "count");
        if (count is < 1 or > MaxVectorsPerMemory)
        {
            throw new ValidationException("count", $"'count' must be 1 to {MaxVectorsPerMemory}");
        }
        var field = ImportJson.Field(r, "vectors");
        if (field.ValueKind != JsonValueKind.String || !field.TryGetBytesFromBase64(out var bytes))
        {
            throw new ValidationException("vectors", "'vectors' must be base64 text");
        }
        var key = new VectorKey(ImportJson.Tenant(r), ImportJson.Text(r, "memory_id"), Version(r, "version"));
        var model = ImportJson.Text(r, "model");
        if (SqliteMemoryStore.Decode(key, model, (int)dims, (int)count, bytes) is not { } vectors)
        {
            throw new ValidationException("vectors", $"'vectors' holds {bytes.Length} bytes; {count} x {dims} float32 values are {count * dims * sizeof(float)}");
        }
        foreach (var value in vectors.Values)
        {
            if (!float.IsFinite(value))
            {
                throw new ValidationException("vectors", "'vectors' must hold finite values (no NaN or infinity)");
            }
        }
        if (!vectors.Values.AsSpan().ContainsAnyExcept(0f))
        {
            throw new ValidationException("vectors", "'vectors' is all zeros, which no model embeds");
        }
        return vectors;
    }

    /// <summary>The record's kind (checked against the known kinds).</summary>
    public static string Kind(JsonElement r) => ImportJson.Text(r, "kind") switch
    {
        ExportKinds.Memory or ExportKinds.KeyValue or ExportKinds.Entity or ExportKinds.Relation or ExportKinds.Link or ExportKinds.Conversation
            or ExportKinds.ExtractionJob or ExportKinds.Vector => ImportJson.Text(r, "kind"),
        var other => throw new ValidationException("kind", $"unknown kind '{other}'"),
    };

    /// <summary>What an import refuses a record for: the store's and the record's own errors, not bugs.</summary>
    public static bool IsRecordError(Exception ex) => ex is EngramException or StoreException or JsonException or FormatException or InvalidOperationException;

    public static DateTimeOffset? FromMs(long? ms) => ms is { } value ? DateTimeOffset.FromUnixTimeMilliseconds(value) : null;
}

/// <summary>How an import treats a record already in the store.</summary>
/// <param name="Baseline">Memories up to this row count as content duplicates (0: none do; see <c>GetImportBaselineAsync</c>).</param>
/// <param name="Exact">
/// A migration: a record is skipped only when the same record is there (a memory's id, a key whatever its state,
/// an entity's name, a relation's triple), so a run that is resumed copies what is left and nothing twice.
/// </param>
/// <param name="Validation">The write paths' rules and limits each record is held to (<see cref="ImportValidation"/>).</param>
/// <param name="StopAtRefusal">
/// An import without <c>--continue-on-error</c>: after a refused record, the rest of the batch is not written
/// (<see cref="ImportOutcome.NotReached"/>), so the import stops exactly at the line it names.
/// </param>
public sealed record ImportRules(long Baseline, ImportValidation Validation, bool Exact = false, bool StopAtRefusal = false);

public sealed record ImportedMemoryHistory(string Event, string Actor, long At, long Version, string ChangesJson);

public sealed record ImportedMemory(string Tenant, string Id, string Content, string ContentHash, string Type, string Tier, double Importance, double? Valence,
    IReadOnlyList<string> Tags, string TagsJson, string MetadataJson, IReadOnlyList<string> Entities, string EntitiesJson, string?[] Scopes,
    long CreatedAt, long UpdatedAt, long? LastAccessedAt, long AccessCount, long? ExpiresAt, long? ValidFrom, long? ValidTo, long Version,
    IReadOnlyList<ImportedMemoryHistory> History)
{
    public string? UserId => Scopes[0];

    public string? AgentId => Scopes[1];

    public string? SessionId => Scopes[2];

    public string? Namespace => Scopes[3];

    public string? Source => Scopes[4];

    /// <summary>The memory that replaced this one (a superseded fact), or null.</summary>
    public string? SupersededBy { get; init; }
}

public sealed record ImportedLink(string Tenant, string MemoryId, string Kind, string TargetId, long CreatedAt);

public sealed record ImportedConversationHistory(string Event, string Actor, long At, string? Detail);

public sealed record ImportedConversation(string Tenant, string Id, string Body, long CreatedAt, IReadOnlyList<ImportedConversationHistory> History);

/// <summary>An extraction job as the importing store writes it (status already queued for one that was pending; no lease).</summary>
public sealed record ImportedJob(string Tenant, string Id, string ConversationId, string Actor, string Status, long Attempts, long NextAttemptAt,
    string? PlanJson, string? AppliedJson, string? MemoryIdsJson, string? Error, string? Model, long CreatedAt, long UpdatedAt)
{
    /// <summary>The refusal of a job whose conversation is not in the store (in its tenant).</summary>
    public ValidationException MissingConversation() => new("conversation_id",
        $"no conversation '{ConversationId}' in tenant '{Tenant}' (conversations come before extraction jobs in an export)");
}

public sealed record ImportedKeyValueHistory(string Event, string Actor, long At, long Version, string? ValueJson, long? ExpiresAt);

public sealed record ImportedKeyValue(string Tenant, string Key, string ValueJson, long? ExpiresAt, long Version, long CreatedAt, long UpdatedAt,
    IReadOnlyList<ImportedKeyValueHistory> History);

public sealed record ImportedEntity(string Tenant, string Name, string Type, long CreatedAt, long UpdatedAt, IReadOnlyList<(Observation Observation, long CreatedAt)> Observations);

public sealed record ImportedRelation(string Tenant, Relation Relation, long CreatedAt);

/// <summary>Reads the fields of an export record, with a clear error naming the field that is missing or wrong.</summary>
internal static class ImportJson
{
    /// <summary>The tenant of a record the store keeps under its tenant (memories, links, conversations, jobs, vectors): never a partition.</summary>
    public static string Tenant(JsonElement r)
    {
        var tenant = Text(r, "tenant");
        return TenantNames.IsValid(tenant) || !ScopeGuard.IsStoreTenant(tenant)
            ? TenantNames.Require(tenant, "tenant")
            : throw new ValidationException("tenant", $"'tenant' names the scope partition '{ScopeGuard.Display(tenant)}', which holds only key-value " +
                "entries and the graph; this kind of record is kept under its tenant");
    }

    /// <summary>
    /// The tenant of a key-value entry, an entity or a relation: a tenant, or one of its partitions (a scoped key's, where the
    /// store keeps that key's entries and graph), exactly as the store names them (<see cref="ScopeGuard.IsStoreTenant"/>).
    /// </summary>
    public static string StoreTenant(JsonElement r) => ScopeGuard.RequireStoreTenant(Text(r, "tenant"), "tenant");

    public static JsonElement Field(JsonElement r, string name) =>
        r.ValueKind == JsonValueKind.Object && r.TryGetProperty(name, out var value) ? value : throw new ValidationException(name, $"'{name}' is missing");

    public static string Text(JsonElement r, string name) =>
        Field(r, name) is { ValueKind: JsonValueKind.String } value ? value.GetString()! : throw new ValidationException(name, $"'{name}' must be a string");

    public static string? TextOrNull(JsonElement r, string name) =>
        r.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? Text(r, name) : null;

    public static double Number(JsonElement r, string name) =>
        Field(r, name) is { ValueKind: JsonValueKind.Number } value ? value.GetDouble() : throw new ValidationException(name, $"'{name}' must be a number");

    public static double? NumberOrNull(JsonElement r, string name) =>
        r.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? Number(r, name) : null;

    public static long Integer(JsonElement r, string name) =>
        Field(r, name) is { ValueKind: JsonValueKind.Number } value && value.TryGetInt64(out var number)
            ? number
            : throw new ValidationException(name, $"'{name}' must be an integer");

    public static long Time(JsonElement r, string name) =>
        DateTimeOffset.TryParse(Text(r, name), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time)
            ? time.ToUnixTimeMilliseconds()
            : throw new ValidationException(name, $"'{name}' must be an ISO 8601 time");

    public static long? TimeOrNull(JsonElement r, string name) =>
        r.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? Time(r, name) : null;

    public static JsonElement.ArrayEnumerator Array(JsonElement r, string name) =>
        Field(r, name) is { ValueKind: JsonValueKind.Array } value ? value.EnumerateArray() : throw new ValidationException(name, $"'{name}' must be an array");

    public static List<string> StringArray(JsonElement r, string name)
    {
        var items = new List<string>();
        foreach (var item in Array(r, name))
        {
            items.Add(item.ValueKind == JsonValueKind.String ? item.GetString()! : throw new ValidationException(name, $"'{name}' must be an array of strings"));
        }
        return items;
    }
}
