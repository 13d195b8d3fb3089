using Engram.Core.Memories;

namespace Engram.Core.Storage.Sqlite;

public sealed partial class SqliteMemoryStore
{
    /// <summary>
    /// The counts the writer keeps (triggers in the same transaction as each change), summed over
    /// tenants: one read of a table with a row per tenant, tier and type, never a scan of the data.
    /// </summary>
    public Task<StoreCounts> ReadCountsAsync(CancellationToken ct = default) =>
        _readers.ReadAsync(c =>
        {
            var counts = new StoreCounts.Builder();
            using var statement = c.Prepare("SELECT kind, tier, type, SUM(n) FROM row_counts GROUP BY kind, tier, type");
            while (statement.Step())
            {
                counts.Add(statement.GetText(0), statement.GetText(1), statement.GetText(2), statement.GetInt64(3));
            }
            return counts.Build();
        }, ct).AsTask();

    /// <summary>
    /// A tenant's live memories by type and tier without a scan: the writer's counts, less the rows past
    /// their TTL that the sweeper has not deleted yet (found through the expiry index; few, as the sweeper
    /// runs every minute), so the answer is what a GROUP BY over the live rows would give.
    /// </summary>
    private static MemoryCounts CountedStats(SqliteConnection c, string tenant, long now)
    {
        var counts = new Dictionary<(string Tier, string Type), long>();
        using (var statement = c.Prepare("SELECT tier, type, n FROM row_counts WHERE tenant = ?1 AND kind = 'memory' AND n > 0"))
        {
            statement.BindAll([tenant]);
            while (statement.Step())
            {
                counts[(statement.GetText(0), statement.GetText(1))] = statement.GetInt64(2);
            }
        }
        using (var statement = c.Prepare(
            "SELECT tier, type, COUNT(*) FROM memories INDEXED BY memories_expires WHERE expires_at IS NOT NULL AND expires_at <= ?1 AND tenant = ?2 GROUP BY tier, type"))
        {
            statement.BindAll([now, tenant]);
            while (statement.Step())
            {
                var key = (statement.GetText(0), statement.GetText(1));
                counts[key] = counts.GetValueOrDefault(key) - statement.GetInt64(2);
            }
        }
        return MemoryCounts.FromTierAndType(counts);
    }
}
