using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Engram.Core.Storage.Sqlite;

public sealed partial class SqliteMemoryStore
{
    private const int VectorPruneChunk = 500;

    /// <summary>The schema version that added <c>memory_vectors</c>.</summary>
    private const int VectorTableVersion = 10;

    /// <summary>False only for a store opened at an earlier schema (tests that write old files): writes then leave vectors alone.</summary>
    private bool HasVectorTable { get; init; } = true;

    public Task<IReadOnlyList<MemoryVectors>> GetVectorsAsync(IReadOnlyList<VectorKey> keys, string model, CancellationToken ct = default) =>
        keys.Count == 0
            ? Task.FromResult<IReadOnlyList<MemoryVectors>>([])
            : _readers.ReadAsync<IReadOnlyList<MemoryVectors>>(c =>
            {
                var found = new List<MemoryVectors>(keys.Count);
                using var statement = c.Prepare(
                    "SELECT dims, count, vectors FROM memory_vectors WHERE tenant = ?1 AND memory_id = ?2 AND model = ?3 AND version = ?4");
                foreach (var key in keys)
                {
                    statement.Reset();
                    statement.BindAll([key.Tenant, key.MemoryId, model, key.Version]);
                    if (statement.Step() && Decode(key, model, (int)statement.GetInt64(0), (int)statement.GetInt64(1), statement.GetBytes(2)) is { } vectors)
                    {
                        found.Add(vectors);
                    }
                }
                return found;
            }, ct).AsTask();

    public Task<int> PutVectorsAsync(IReadOnlyList<MemoryVectors> vectors, CancellationToken ct = default)
    {
        if (vectors.Count == 0)
        {
            return Task.FromResult(0);
        }
        // Encoded before queueing: the writer's thread only binds and steps.
        var rows = vectors.Select(v => (v, Encode(v.Values))).ToList();
        return WriteApartFromKvAsync(c =>
        {
            var written = 0;
            using var insert = c.Prepare(
                "INSERT OR REPLACE INTO memory_vectors(tenant, memory_id, version, model, dims, count, vectors) " +
                "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM memories WHERE tenant = ?1 AND id = ?2 AND version = ?3)");
            foreach (var (v, blob) in rows)
            {
                insert.Reset();
                insert.BindAll([v.Key.Tenant, v.Key.MemoryId, v.Key.Version, v.Model, v.Dimensions, v.Count, blob]);
                insert.StepToEnd();
                written += c.Changes;
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
            // Other models' rows through the model index (both sides of the kept one), then rows whose
            // memory version is gone (written by an older binary, or by a process that crashed mid-way).
            var deleted = await WriteApartFromKvAsync(c =>
            {
                var n = c.ExecuteNonQuery(
                    "DELETE FROM memory_vectors WHERE rowid IN (SELECT rowid FROM memory_vectors WHERE model < ?1 OR model > ?1 LIMIT ?2)", keepModel, chunk);
                if (n < chunk)
                {
                    n += c.ExecuteNonQuery(
                        "DELETE FROM memory_vectors WHERE rowid IN (SELECT v.rowid FROM memory_vectors v WHERE NOT EXISTS " +
                        "(SELECT 1 FROM memories m WHERE m.tenant = v.tenant AND m.id = v.memory_id AND m.version = v.version) LIMIT ?1)", chunk - n);
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
        _readers.ReadAsync(c => c.ScalarInt64("SELECT COUNT(*) FROM memory_vectors") ?? 0, ct).AsTask();

    /// <summary>Inside a memory's update: its vectors follow a new version when the content stayed, else they go.</summary>
    private void CarryVectors(SqliteConnection c, string tenant, string id, bool contentChanged, long newVersion)
    {
        if (!HasVectorTable)
        {
            return;
        }
        if (contentChanged)
        {
            c.ExecuteNonQuery("DELETE FROM memory_vectors WHERE tenant = ?1 AND memory_id = ?2", tenant, id);
        }
        else
        {
            c.ExecuteNonQuery("UPDATE memory_vectors SET version = ?3 WHERE tenant = ?1 AND memory_id = ?2", tenant, id, newVersion);
        }
    }

    private void DeleteVectors(SqliteConnection c, string tenant, string id)
    {
        if (HasVectorTable)
        {
            c.ExecuteNonQuery("DELETE FROM memory_vectors WHERE tenant = ?1 AND memory_id = ?2", tenant, id);
        }
    }

    /// <summary>n x dims float32, little-endian whatever the machine.</summary>
    internal static byte[] Encode(ReadOnlySpan<float> values)
    {
        var blob = new byte[values.Length * sizeof(float)];
        if (BitConverter.IsLittleEndian)
        {
            MemoryMarshal.AsBytes(values).CopyTo(blob);
        }
        else
        {
            for (var i = 0; i < values.Length; i++)
            {
                BinaryPrimitives.WriteSingleLittleEndian(blob.AsSpan(i * sizeof(float)), values[i]);
            }
        }
        return blob;
    }

    internal static MemoryVectors? Decode(VectorKey key, string model, int dims, int count, ReadOnlySpan<byte> blob)
    {
        if (dims <= 0 || count <= 0 || blob.Length != (long)dims * count * sizeof(float))
        {
            return null; // a damaged row: embedded again, then overwritten
        }
        var values = new float[dims * count];
        if (BitConverter.IsLittleEndian)
        {
            blob.CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
        }
        else
        {
            for (var i = 0; i < values.Length; i++)
            {
                values[i] = BinaryPrimitives.ReadSingleLittleEndian(blob[(i * sizeof(float))..]);
            }
        }
        return new MemoryVectors(key, model, dims, values);
    }
}
