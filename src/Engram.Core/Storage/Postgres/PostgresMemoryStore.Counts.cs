using Engram.Core.Memories;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

public sealed partial class PostgresMemoryStore
{
    /// <summary>The counts the triggers keep in every writing transaction, summed over tenants: no scan.</summary>
    public Task<StoreCounts> ReadCountsAsync(CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            var counts = new StoreCounts.Builder();
            await using var command = Command(c, "SELECT kind, tier, type, SUM(n)::bigint FROM row_counts GROUP BY kind, tier, type");
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                counts.Add(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3));
            }
            return counts.Build();
        }, ct);

    /// <summary>A tenant's live memories by type and tier: the kept counts less the rows past their TTL not swept yet.</summary>
    private static async Task<MemoryCounts> CountedStatsAsync(NpgsqlConnection c, string tenant, long now, CancellationToken ct)
    {
        var counts = new Dictionary<(string Tier, string Type), long>();
        await using (var command = Command(c, "SELECT tier, type, n FROM row_counts WHERE tenant = $1 AND kind = 'memory' AND n > 0").Text(tenant))
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                counts[(reader.GetString(0), reader.GetString(1))] = reader.GetInt64(2);
            }
        }
        await using (var command = Command(c,
            "SELECT tier, type, COUNT(*) FROM memories WHERE expires_at IS NOT NULL AND expires_at <= $1 AND tenant = $2 GROUP BY tier, type").Int(now).Text(tenant))
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var key = (reader.GetString(0), reader.GetString(1));
                counts[key] = counts.GetValueOrDefault(key) - reader.GetInt64(2);
            }
        }
        return MemoryCounts.FromTierAndType(counts);
    }
}
