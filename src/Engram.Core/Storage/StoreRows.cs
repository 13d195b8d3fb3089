using System.Text;
using Engram.Core.Common;
using Engram.Core.Graph;
using Engram.Core.KeyValue;
using Engram.Core.Memories;

namespace Engram.Core.Storage;

/// <summary>
/// The column lists both stores select and the records they map to, written once over <see cref="IStoreRow"/>
/// (generic, so a struct row is not boxed), plus the time and cursor encodings both stores share.
/// </summary>
internal static class StoreRows
{
    /// <summary>
    /// An If-Match check of a memory write, inside its step: the memory must be at <paramref name="expectedVersion"/> (null:
    /// any version), or the write is refused with the version it is at.
    /// </summary>
    public static void CheckVersion(string id, Memory current, long? expectedVersion)
    {
        if (expectedVersion is { } expected && expected != current.Version)
        {
            throw new PreconditionFailedException(
                $"memory '{id}' is at version {current.Version}, not {expected}; fetch it again and retry", current.Version);
        }
    }

    /// <summary>The column list every memory query selects, in the order <see cref="ReadMemory{TRow}"/> reads.</summary>
    public const string MemoryColumns =
        "m.id, m.content, m.content_hash, m.type, m.tier, m.importance, m.valence, m.tags, m.metadata, " +
        "m.user_id, m.agent_id, m.session_id, m.namespace, m.source, m.created_at, m.updated_at, " +
        "m.last_accessed_at, m.access_count, m.expires_at, m.valid_from, m.valid_to, m.version, m.entities, m.superseded_by";

    /// <summary>How many columns <see cref="MemoryColumns"/> has: a query selecting more puts them from this index on.</summary>
    public const int MemoryColumnCount = 24;

    public static Memory ReadMemory<TRow>(TRow row) where TRow : IStoreRow => new()
    {
        Id = row.GetText(0),
        Content = row.GetText(1),
        ContentHash = row.GetText(2),
        Type = row.GetText(3),
        Tier = MemoryTiers.TryParse(row.GetText(4), out var tier) ? tier : MemoryTier.LongTerm,
        Importance = row.GetDouble(5),
        Valence = row.GetDoubleOrNull(6),
        Tags = row.GetStringArray(7),
        Metadata = row.GetJson(8),
        UserId = row.GetTextOrNull(9),
        AgentId = row.GetTextOrNull(10),
        SessionId = row.GetTextOrNull(11),
        Namespace = row.GetTextOrNull(12),
        Source = row.GetTextOrNull(13),
        CreatedAt = FromMs(row.GetInt64(14)),
        UpdatedAt = FromMs(row.GetInt64(15)),
        LastAccessedAt = FromMs(row.GetInt64OrNull(16)),
        AccessCount = row.GetInt64(17),
        ExpiresAt = FromMs(row.GetInt64OrNull(18)),
        ValidFrom = FromMs(row.GetInt64OrNull(19)),
        ValidTo = FromMs(row.GetInt64OrNull(20)),
        Version = row.GetInt64(21),
        Entities = row.GetStringArray(22),
        SupersededBy = row.GetTextOrNull(23),
    };

    /// <summary>Columns: seq, event, actor, at, version, changes.</summary>
    public static HistoryEntry ReadHistory<TRow>(TRow row, string memoryId) where TRow : IStoreRow => new()
    {
        Seq = row.GetInt64(0),
        MemoryId = memoryId,
        Event = row.GetText(1),
        Actor = row.GetText(2),
        At = FromMs(row.GetInt64(3)),
        Version = row.GetInt64(4),
        Changes = row.GetJson(5),
    };

    /// <summary>Columns: seq, tenant, entity, entity id, op, at.</summary>
    public static ChangeRecord ReadChange<TRow>(TRow row) where TRow : IStoreRow =>
        new(row.GetInt64(0), row.GetText(1), row.GetText(2), row.GetText(3), row.GetText(4), FromMs(row.GetInt64(5)));

    /// <summary>Columns: seq, event, actor, at, version, value, expires_at (the chain's prev_hid is the caller's).</summary>
    public static KvHistoryEntry ReadKvHistory<TRow>(TRow row) where TRow : IStoreRow =>
        new(row.GetInt64(0), row.GetText(1), row.GetText(2), FromMs(row.GetInt64(3)), row.GetInt64(4), row.GetTextOrNull(5), FromMs(row.GetInt64OrNull(6)));

    /// <summary>Columns: seq, event, actor, at, entity name, changes.</summary>
    public static GraphHistoryEntry ReadGraphHistory<TRow>(TRow row) where TRow : IStoreRow => new()
    {
        Seq = row.GetInt64(0),
        Event = row.GetText(1),
        Actor = row.GetText(2),
        At = FromMs(row.GetInt64(3)),
        EntityName = row.GetText(4),
        Changes = row.GetJson(5),
    };

    /// <summary>Columns from <paramref name="first"/>: content, valid_from, valid_to.</summary>
    public static Observation ReadObservation<TRow>(TRow row, int first) where TRow : IStoreRow => new()
    {
        Content = row.GetText(first),
        ValidFrom = FromMs(row.GetInt64OrNull(first + 1)),
        ValidTo = FromMs(row.GetInt64OrNull(first + 2)),
    };

    /// <summary>Columns: rid, from, to, type, weight, valid_from, valid_to, created_at.</summary>
    public static (long Rid, Relation Relation) ReadRelation<TRow>(TRow row) where TRow : IStoreRow => (row.GetInt64(0), new Relation
    {
        From = row.GetText(1),
        To = row.GetText(2),
        RelationType = row.GetText(3),
        Weight = row.GetDoubleOrNull(4),
        ValidFrom = FromMs(row.GetInt64OrNull(5)),
        ValidTo = FromMs(row.GetInt64OrNull(6)),
        CreatedAt = FromMs(row.GetInt64(7)),
    });

    public static Relation MarkValidity(Relation relation, DateTimeOffset now) => relation with { Valid = relation.IsValidAt(now) };

    /// <summary>An entity with its observations split into the valid ones (as text) and, when asked, the invalid ones.</summary>
    public static Entity ToEntity(string name, string type, long createdAt, long updatedAt, IReadOnlyList<Observation> all, DateTimeOffset now, bool includeInvalid)
    {
        var invalid = all.Where(o => !o.IsValidAt(now)).Select(o => o with { Valid = false }).ToList();
        return new Entity
        {
            Name = name,
            EntityType = type,
            Observations = all.Where(o => o.IsValidAt(now)).Select(o => o.Content).ToList(),
            InvalidObservations = includeInvalid ? invalid : null,
            CreatedAt = FromMs(createdAt),
            UpdatedAt = FromMs(updatedAt),
        };
    }

    public static DateTimeOffset FromMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    public static DateTimeOffset? FromMs(long? ms) => ms is null ? null : DateTimeOffset.FromUnixTimeMilliseconds(ms.Value);

    public static long? ToMs(DateTimeOffset? value) => value?.ToUnixTimeMilliseconds();

    // Cursors are opaque to clients: the last id of the page, base64url-encoded.
    public static string EncodeCursor(string lastId) => Convert.ToBase64String(Encoding.UTF8.GetBytes(lastId)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string DecodeCursor(string cursor)
    {
        try
        {
            var base64 = cursor.Replace('-', '+').Replace('_', '/');
            base64 = base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=');
            var id = Encoding.UTF8.GetString(Convert.FromBase64String(base64));
            if (Ulid.IsValid(id))
            {
                return id;
            }
        }
        catch (FormatException)
        {
        }
        throw new ValidationException("cursor", "cursor is not one this server handed out; pass next_cursor from the previous page unchanged");
    }
}
