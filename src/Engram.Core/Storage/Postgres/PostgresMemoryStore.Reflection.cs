using Engram.Core.Reflection;
using Npgsql;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Postgres;

/// <summary>Reflections: memory links and each scope's reflection watermark (as the SQLite store's).</summary>
public sealed partial class PostgresMemoryStore : IReflectionStore
{
    public Task<IReadOnlyList<ScopeActivity>> ListReflectionScopesAsync(string? tenant, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<ScopeActivity>>(async c =>
        {
            await using var command = Command(c,
                "SELECT tenant, user_id, agent_id, session_id, namespace, max(seq), count(*) FROM memories " +
                "WHERE ($1::text IS NULL OR tenant = $1) AND type <> 'reflection' AND (expires_at IS NULL OR expires_at > $2) " +
                "GROUP BY tenant, user_id, agent_id, session_id, namespace ORDER BY tenant, max(seq)")
                .Text(tenant).Int(NowMs);
            var scopes = new List<ScopeActivity>();
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                scopes.Add(new ScopeActivity(new ReflectionScope(reader.GetString(0), reader.TextOrNull(1), reader.TextOrNull(2), reader.TextOrNull(3),
                    reader.TextOrNull(4)), reader.GetInt64(5), (int)reader.GetInt64(6)));
            }
            return scopes;
        }, ct);

    public Task<IReadOnlyDictionary<string, long>> ReadReflectionWatermarksAsync(string? tenant, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyDictionary<string, long>>(async c =>
        {
            await using var command = Command(c, "SELECT tenant, scope_key, seq FROM reflection_watermarks WHERE $1::text IS NULL OR tenant = $1").Text(tenant);
            var marks = new Dictionary<string, long>(StringComparer.Ordinal);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                marks[reader.GetString(0) + "\u001e" + reader.GetString(1)] = reader.GetInt64(2);
            }
            return marks;
        }, ct);

    public Task SetReflectionWatermarkAsync(ReflectionScope scope, long seq, DateTimeOffset at, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            await using var command = Command(c,
                "INSERT INTO reflection_watermarks(tenant, scope_key, seq, run_at) VALUES ($1, $2, $3, $4) " +
                "ON CONFLICT (tenant, scope_key) DO UPDATE SET seq = greatest(reflection_watermarks.seq, excluded.seq), run_at = excluded.run_at")
                .Text(scope.Tenant).Text(scope.Key).Int(seq).Int(at.ToUnixTimeMilliseconds());
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }, ct);

    public Task<IReadOnlyList<SequencedMemory>> ReadScopeChangesAsync(ReflectionScope scope, long afterSeq, int max, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<SequencedMemory>>(async c =>
        {
            await using var command = Command(c,
                $"SELECT {MemoryColumns}, m.seq FROM memories m WHERE m.tenant = $1 AND m.user_id IS NOT DISTINCT FROM $2 AND m.agent_id IS NOT DISTINCT FROM $3 " +
                "AND m.session_id IS NOT DISTINCT FROM $4 AND m.namespace IS NOT DISTINCT FROM $5 AND m.seq > $6 AND m.type <> 'reflection' " +
                "AND (m.expires_at IS NULL OR m.expires_at > $7) ORDER BY m.seq LIMIT $8")
                .Text(scope.Tenant).Text(scope.UserId).Text(scope.AgentId).Text(scope.SessionId).Text(scope.Namespace).Int(afterSeq).Int(NowMs).Int(max);
            var found = new List<SequencedMemory>();
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                found.Add(new SequencedMemory(ReadMemory(reader), reader.GetInt64(MemoryColumnCount)));
            }
            return found;
        }, ct);

    public Task AddLinksAsync(string tenant, IReadOnlyList<MemoryLink> links, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            foreach (var link in links)
            {
                await using var insert = Command(c,
                    "INSERT INTO memory_links(tenant, memory_id, kind, target_id, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                    .Text(tenant).Text(link.MemoryId).Text(link.Kind).Text(link.TargetId).Int(link.CreatedAt.ToUnixTimeMilliseconds());
                await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            return 0;
        }, ct);

    public Task<IReadOnlyList<MemoryLink>> GetLinksAsync(string tenant, string memoryId, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            await using var command = Command(c,
                "SELECT lid, memory_id, kind, target_id, created_at FROM memory_links WHERE tenant = $1 AND (memory_id = $2 OR target_id = $2) ORDER BY lid")
                .Text(tenant).Text(memoryId);
            return await ReadLinksAsync(command, ct).ConfigureAwait(false);
        }, ct);

    public Task<IReadOnlyList<MemoryLink>> ListLinksAsync(string tenant, string kind, string? targetId, int max, long? before, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            await using var command = Command(c,
                "SELECT lid, memory_id, kind, target_id, created_at FROM memory_links WHERE tenant = $1 AND kind = $2 AND ($3::text IS NULL OR target_id = $3) " +
                "AND ($4::bigint IS NULL OR lid < $4) ORDER BY lid DESC LIMIT $5")
                .Text(tenant).Text(kind).Text(targetId).Int(before).Int(max);
            return await ReadLinksAsync(command, ct).ConfigureAwait(false);
        }, ct);

    private static async Task<IReadOnlyList<MemoryLink>> ReadLinksAsync(NpgsqlCommand command, CancellationToken ct)
    {
        var links = new List<MemoryLink>();
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            links.Add(new MemoryLink(reader.GetString(1), reader.GetString(2), reader.GetString(3), FromMs(reader.GetInt64(4))) { Position = reader.GetInt64(0) });
        }
        return links;
    }
}
