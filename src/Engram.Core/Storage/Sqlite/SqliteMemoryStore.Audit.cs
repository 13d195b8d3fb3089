using Engram.Core.Security;

namespace Engram.Core.Storage.Sqlite;

/// <summary>The audit log (schema 9): appended by the writer, which prunes the oldest entries past the bound in the same transaction.</summary>
public sealed partial class SqliteMemoryStore : IAuditLog
{
    public Task AppendAuditAsync(IReadOnlyList<AuditEntry> entries, int maxRows, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            using (var insert = c.Prepare("INSERT INTO audit_log(at, tenant, actor, action, target, outcome, remote, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"))
            {
                foreach (var e in entries)
                {
                    insert.BindAll([e.At.ToUnixTimeMilliseconds(), e.Tenant, e.Actor, e.Action, e.Target, e.Outcome, e.Remote, e.Detail]);
                    insert.StepToEnd();
                    insert.Reset();
                }
            }
            // seq is the rowid: the newest maxRows entries are the last maxRows seqs, a range delete on the key.
            c.ExecuteNonQuery("DELETE FROM audit_log WHERE seq <= (SELECT max(seq) FROM audit_log) - ?1", maxRows);
            return 0;
        }, ct);

    public Task<AuditPage> ReadAuditAsync(AuditQuery query, CancellationToken ct = default) =>
        _readers.ReadAsync(c =>
        {
            var action = query.Action;
            string? family = null;
            if (action is not null && (action.EndsWith('.') || action.EndsWith('*')))
            {
                family = action.TrimEnd('*');
                action = null;
            }
            using var statement = c.Prepare(
                "SELECT seq, at, tenant, actor, action, target, outcome, remote, detail FROM audit_log " +
                "WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR action = ?3) " +
                "AND (?4 IS NULL OR substr(action, 1, length(?4)) = ?4) AND (?5 IS NULL OR seq < ?5) ORDER BY seq DESC LIMIT ?6");
            statement.BindAll([query.Tenant, query.Since?.ToUnixTimeMilliseconds(), action, family, query.Before, query.Limit + 1]);
            var items = new List<AuditEntry>();
            while (statement.Step())
            {
                items.Add(new AuditEntry(DateTimeOffset.FromUnixTimeMilliseconds(statement.GetInt64(1)), statement.GetText(2), statement.GetText(3),
                    statement.GetText(4), statement.GetTextOrNull(5), statement.GetText(6), statement.GetTextOrNull(7), statement.GetTextOrNull(8))
                { Seq = statement.GetInt64(0) });
            }
            long? next = null;
            if (items.Count > query.Limit)
            {
                items.RemoveAt(items.Count - 1);
                next = items[^1].Seq;
            }
            return new AuditPage(items, next);
        }, ct).AsTask();
}
