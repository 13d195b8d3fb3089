using System.Globalization;

namespace Engram.Core.Storage.Transfer;

/// <summary>
/// What a store holds of each kind an export carries, per tenant: the figures a migration compares
/// between its source and its target (see <see cref="ExportReader.CountPerTenantAsync"/>).
/// </summary>
public sealed class TransferCounts
{
    public const string Memories = "memories";
    public const string MemoryHistory = "memory_history";
    public const string KeyValues = "kv_entries";
    public const string KeyValueHistory = "kv_history";
    public const string Entities = "entities";
    public const string Observations = "observations";
    public const string Relations = "relations";
    public const string Links = "memory_links";
    public const string Conversations = "conversations";
    public const string ConversationHistory = "conversation_history";
    public const string Jobs = "extraction_jobs";

    public static readonly string[] Kinds =
        [Memories, MemoryHistory, KeyValues, KeyValueHistory, Entities, Observations, Relations, Links, Conversations, ConversationHistory, Jobs];

    /// <summary>The statement per kind: (tenant, count) rows; <c>{0}</c> is the tenant filter on alias x, if any.</summary>
    internal static readonly (string Kind, string Sql)[] Queries =
    [
        (Memories, "SELECT x.tenant, count(*) FROM memories x{0} GROUP BY x.tenant"),
        // History rows of memories that are there: a deleted memory's history stays with the source.
        (MemoryHistory, "SELECT x.tenant, count(*) FROM memory_history h JOIN memories x ON x.tenant = h.tenant AND x.id = h.memory_id{0} GROUP BY x.tenant"),
        (KeyValues, "SELECT x.tenant, count(*) FROM kv_entries x{0} GROUP BY x.tenant"),
        (KeyValueHistory, "WITH RECURSIVE chain(tenant, hid) AS (SELECT x.tenant, x.last_hid FROM kv_entries x{0} " +
            "UNION ALL SELECT c.tenant, h.prev_hid FROM chain c JOIN kv_history h ON h.hid = c.hid WHERE h.prev_hid IS NOT NULL) " +
            "SELECT c.tenant, count(*) FROM chain c JOIN kv_history h ON h.hid = c.hid GROUP BY c.tenant"),
        (Entities, "SELECT x.tenant, count(*) FROM graph_entities x{0} GROUP BY x.tenant"),
        (Observations, "SELECT x.tenant, count(*) FROM graph_observations x{0} GROUP BY x.tenant"),
        (Relations, "SELECT x.tenant, count(*) FROM graph_relations x{0} GROUP BY x.tenant"),
        (Links, "SELECT x.tenant, count(*) FROM memory_links x{0} GROUP BY x.tenant"),
        (Conversations, "SELECT x.tenant, count(*) FROM conversations x{0} GROUP BY x.tenant"),
        // History rows of conversations that are there (what the export carries with them).
        (ConversationHistory, "SELECT x.tenant, count(*) FROM conversation_history h JOIN conversations x ON x.tenant = h.tenant AND x.id = h.conversation_id{0} " +
            "GROUP BY x.tenant"),
        (Jobs, "SELECT x.tenant, count(*) FROM extraction_jobs x{0} GROUP BY x.tenant"),
    ];

    private readonly SortedDictionary<string, SortedDictionary<string, long>> _tenants = new(StringComparer.Ordinal);

    /// <summary>Tenant → kind → count (kinds with none are absent).</summary>
    public IReadOnlyDictionary<string, SortedDictionary<string, long>> Tenants => _tenants;

    public long Total(string kind) => _tenants.Values.Sum(k => k.GetValueOrDefault(kind));

    public long Of(string tenant, string kind) => _tenants.TryGetValue(tenant, out var kinds) ? kinds.GetValueOrDefault(kind) : 0;

    public void Add(string tenant, string kind, long n)
    {
        if (n == 0)
        {
            return;
        }
        if (!_tenants.TryGetValue(tenant, out var kinds))
        {
            _tenants[tenant] = kinds = new SortedDictionary<string, long>(StringComparer.Ordinal);
        }
        kinds[kind] = kinds.GetValueOrDefault(kind) + n;
    }

    /// <summary>Every (tenant, kind) where <paramref name="target"/> differs from this, as "tenant t: kind source N, target M".</summary>
    public IReadOnlyList<CountDifference> Compare(TransferCounts target)
    {
        var differences = new List<CountDifference>();
        foreach (var tenant in _tenants.Keys.Union(target._tenants.Keys).Order(StringComparer.Ordinal))
        {
            foreach (var kind in Kinds)
            {
                var expected = Of(tenant, kind);
                var actual = target.Of(tenant, kind);
                if (expected != actual)
                {
                    differences.Add(new CountDifference(tenant, kind, expected, actual));
                }
            }
        }
        return differences;
    }
}

/// <summary>One count a target does not share with its source.</summary>
public sealed record CountDifference(string Tenant, string Kind, long Source, long Target)
{
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"tenant '{Security.ScopeGuard.Display(Tenant)}': {Kind} source {Source}, target {Target} ({Target - Source:+#;-#;0})");
}
