using Engram.Core.Reflection;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Sqlite;

/// <summary>Reflections (schema 12): memory links and each scope's reflection watermark.</summary>
public sealed partial class SqliteMemoryStore : IReflectionStore
{
    public Task<IReadOnlyList<ScopeActivity>> ListReflectionScopesAsync(string? tenant, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<ScopeActivity>>(c =>
        {
            using var statement = c.Prepare(
                "SELECT tenant, user_id, agent_id, session_id, namespace, MAX(seq), COUNT(*) FROM memories " +
                "WHERE (?1 IS NULL OR tenant = ?1) AND type <> 'reflection' AND (expires_at IS NULL OR expires_at > ?2) " +
                "GROUP BY tenant, user_id, agent_id, session_id, namespace ORDER BY tenant, MAX(seq)");
            statement.BindAll([tenant, NowMs]);
            var scopes = new List<ScopeActivity>();
            while (statement.Step())
            {
                scopes.Add(new ScopeActivity(new ReflectionScope(statement.GetText(0), statement.GetTextOrNull(1), statement.GetTextOrNull(2),
                    statement.GetTextOrNull(3), statement.GetTextOrNull(4)), statement.GetInt64(5), (int)statement.GetInt64(6)));
            }
            return scopes;
        }, ct).AsTask();

    public Task<IReadOnlyDictionary<string, long>> ReadReflectionWatermarksAsync(string? tenant, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyDictionary<string, long>>(c =>
        {
            using var statement = c.Prepare("SELECT tenant, scope_key, seq FROM reflection_watermarks WHERE ?1 IS NULL OR tenant = ?1");
            statement.BindAll([tenant]);
            var marks = new Dictionary<string, long>(StringComparer.Ordinal);
            while (statement.Step())
            {
                marks[statement.GetText(0) + "\u001e" + statement.GetText(1)] = statement.GetInt64(2);
            }
            return marks;
        }, ct).AsTask();

    public Task SetReflectionWatermarkAsync(ReflectionScope scope, long seq, DateTimeOffset at, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c => c.ExecuteNonQuery(
            "INSERT INTO reflection_watermarks(tenant, scope_key, seq, run_at) VALUES (?1, ?2, ?3, ?4) " +
            "ON CONFLICT(tenant, scope_key) DO UPDATE SET seq = max(seq, excluded.seq), run_at = excluded.run_at",
            scope.Tenant, scope.Key, seq, at.ToUnixTimeMilliseconds()), ct);

    public Task<IReadOnlyList<SequencedMemory>> ReadScopeChangesAsync(ReflectionScope scope, long afterSeq, int max, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<SequencedMemory>>(c =>
        {
            using var statement = c.Prepare(
                $"SELECT {MemoryColumns}, m.seq FROM memories m WHERE m.tenant = ?1 AND m.user_id IS ?2 AND m.agent_id IS ?3 AND m.session_id IS ?4 " +
                "AND m.namespace IS ?5 AND m.seq > ?6 AND m.type <> 'reflection' AND (m.expires_at IS NULL OR m.expires_at > ?7) ORDER BY m.seq LIMIT ?8");
            statement.BindAll([scope.Tenant, scope.UserId, scope.AgentId, scope.SessionId, scope.Namespace, afterSeq, NowMs, max]);
            var found = new List<SequencedMemory>();
            while (statement.Step())
            {
                found.Add(new SequencedMemory(ReadMemory(statement), statement.GetInt64(MemoryColumnCount)));
            }
            return found;
        }, ct).AsTask();

    public Task AddLinksAsync(string tenant, IReadOnlyList<MemoryLink> links, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            using var insert = c.Prepare(
                "INSERT INTO memory_links(tenant, memory_id, kind, target_id, created_at) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING");
            foreach (var link in links)
            {
                insert.BindAll([tenant, link.MemoryId, link.Kind, link.TargetId, link.CreatedAt.ToUnixTimeMilliseconds()]);
                insert.StepToEnd();
                insert.Reset();
            }
            return 0;
        }, ct);

    public Task<IReadOnlyList<MemoryLink>> GetLinksAsync(string tenant, string memoryId, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<MemoryLink>>(c =>
        {
            using var statement = c.Prepare(
                "SELECT lid, memory_id, kind, target_id, created_at FROM memory_links WHERE tenant = ?1 AND (memory_id = ?2 OR target_id = ?2) ORDER BY lid");
            statement.BindAll([tenant, memoryId]);
            return ReadLinks(statement);
        }, ct).AsTask();

    public Task<IReadOnlyList<MemoryLink>> ListLinksAsync(string tenant, string kind, string? targetId, int max, long? before, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<MemoryLink>>(c =>
        {
            using var statement = c.Prepare(
                "SELECT lid, memory_id, kind, target_id, created_at FROM memory_links WHERE tenant = ?1 AND kind = ?2 AND (?3 IS NULL OR target_id = ?3) " +
                "AND (?4 IS NULL OR lid < ?4) ORDER BY lid DESC LIMIT ?5");
            statement.BindAll([tenant, kind, targetId, before, max]);
            return ReadLinks(statement);
        }, ct).AsTask();

    private static List<MemoryLink> ReadLinks(SqliteStatement statement)
    {
        var links = new List<MemoryLink>();
        while (statement.Step())
        {
            links.Add(new MemoryLink(statement.GetText(1), statement.GetText(2), statement.GetText(3), DateTimeOffset.FromUnixTimeMilliseconds(statement.GetInt64(4)))
            {
                Position = statement.GetInt64(0),
            });
        }
        return links;
    }
}
