using Engram.Core.Storage.Sqlite;
using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>Vectors keyed by memory version and model (bytea, n x dims little-endian float32, as on SQLite).</summary>
public sealed partial class PostgresMemoryStore
{
    private const int VectorPruneChunk = 500;

    public Task<IReadOnlyList<MemoryVectors>> GetVectorsAsync(IReadOnlyList<VectorKey> keys, string model, CancellationToken ct = default) =>
        keys.Count == 0
            ? Task.FromResult<IReadOnlyList<MemoryVectors>>([])
            : ReadAsync<IReadOnlyList<MemoryVectors>>(async c =>
            {
                var found = new List<MemoryVectors>(keys.Count);
                foreach (var key in keys)
                {
                    await using var command = Command(c,
                        "SELECT dims, count, vectors FROM memory_vectors WHERE tenant = $1 AND memory_id = $2 AND model = $3 AND version = $4")
                        .Text(key.Tenant).Text(key.MemoryId).Text(model).Int(key.Version);
                    await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                    if (await reader.ReadAsync(ct).ConfigureAwait(false)
                        && SqliteMemoryStore.Decode(key, model, reader.GetInt32(0), reader.GetInt32(1), (byte[])reader.GetValue(2)) is { } vectors)
                    {
                        found.Add(vectors);
                    }
                }
                return found;
            }, ct);

    public Task<int> PutVectorsAsync(IReadOnlyList<MemoryVectors> vectors, CancellationToken ct = default)
    {
        if (vectors.Count == 0)
        {
            return Task.FromResult(0);
        }
        var rows = vectors.Select(v => (v, SqliteMemoryStore.Encode(v.Values))).ToList();
        return WriteAsync(async c =>
        {
            var written = 0;
            foreach (var (v, blob) in rows)
            {
                await using var command = Command(c,
                    "INSERT INTO memory_vectors(tenant, memory_id, version, model, dims, count, vectors) " +
                    "SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM memories WHERE tenant = $1 AND id = $2 AND version = $3) " +
                    "ON CONFLICT (tenant, memory_id, model, version) DO UPDATE SET dims = excluded.dims, count = excluded.count, vectors = excluded.vectors")
                    .Text(v.Key.Tenant).Text(v.Key.MemoryId).Int(v.Key.Version).Text(v.Model).Int(v.Dimensions).Int(v.Count).Bytes(blob);
                written += await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            return written;
        }, WriteDurability.Relaxed, ct);
    }

    public async Task<int> PruneVectorsAsync(string keepModel, int max, CancellationToken ct = default)
    {
        var total = 0;
        while (total < max)
        {
            var chunk = Math.Min(VectorPruneChunk, max - total);
            var deleted = await WriteAsync(async c =>
            {
                await using var other = Command(c,
                    "DELETE FROM memory_vectors WHERE ctid IN (SELECT ctid FROM memory_vectors WHERE model <> $1 LIMIT $2)").Text(keepModel).Int(chunk);
                var n = await other.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                if (n < chunk)
                {
                    await using var orphans = Command(c,
                        "DELETE FROM memory_vectors WHERE ctid IN (SELECT v.ctid FROM memory_vectors v WHERE NOT EXISTS " +
                        "(SELECT 1 FROM memories m WHERE m.tenant = v.tenant AND m.id = v.memory_id AND m.version = v.version) LIMIT $1)").Int(chunk - n);
                    n += await orphans.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
                }
                return n;
            }, WriteDurability.Relaxed, ct).ConfigureAwait(false);
            total += deleted;
            if (deleted < chunk)
            {
                break;
            }
        }
        return total;
    }

    public Task<long> CountVectorRowsAsync(CancellationToken ct = default) =>
        ReadAsync(c => ScalarAsync<long>(c, "SELECT COUNT(*) FROM memory_vectors", ct), ct);

    /// <summary>Inside a memory's update: its vectors follow a new version when the content stayed, else they go.</summary>
    private static async Task CarryVectorsAsync(NpgsqlConnection c, string tenant, string id, bool contentChanged, long newVersion)
    {
        await using var command = contentChanged
            ? Command(c, "DELETE FROM memory_vectors WHERE tenant = $1 AND memory_id = $2").Text(tenant).Text(id)
            : Command(c, "UPDATE memory_vectors SET version = $3 WHERE tenant = $1 AND memory_id = $2").Text(tenant).Text(id).Int(newVersion);
        await command.ExecuteNonQueryAsync().ConfigureAwait(false);
    }
}
