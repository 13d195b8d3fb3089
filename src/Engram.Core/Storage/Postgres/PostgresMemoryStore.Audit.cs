using Engram.Core.Security;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Postgres;

/// <summary>The audit log: appended in one transaction that also prunes the oldest entries past the bound.</summary>
public sealed partial class PostgresMemoryStore : IAuditLog
{
    public Task AppendAuditAsync(IReadOnlyList<AuditEntry> entries, int maxRows, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            foreach (var e in entries)
            {
                await using var insert = Command(c,
                    "INSERT INTO audit_log(at, tenant, actor, action, target, outcome, remote, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                    .Int(e.At.ToUnixTimeMilliseconds()).Text(e.Tenant).Text(e.Actor).Text(e.Action).Text(e.Target).Text(e.Outcome).Text(e.Remote).Text(e.Detail);
                await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            await using var prune = Command(c, "DELETE FROM audit_log WHERE seq <= (SELECT max(seq) FROM audit_log) - $1").Int(maxRows);
            await prune.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            return 0;
        }, WriteDurability.Full, ct);

    public Task<AuditPage> ReadAuditAsync(AuditQuery query, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            var action = query.Action;
            string? family = null;
            if (action is not null && (action.EndsWith('.') || action.EndsWith('*')))
            {
                family = action.TrimEnd('*');
                action = null;
            }
            await using var command = Command(c,
                "SELECT seq, at, tenant, actor, action, target, outcome, remote, detail FROM audit_log " +
                "WHERE ($1::text IS NULL OR tenant = $1) AND ($2::bigint IS NULL OR at >= $2) AND ($3::text IS NULL OR action = $3) " +
                "AND ($4::text IS NULL OR starts_with(action, $4)) AND ($5::bigint IS NULL OR seq < $5) ORDER BY seq DESC LIMIT $6")
                .Text(query.Tenant).Int(query.Since?.ToUnixTimeMilliseconds()).Text(action).Text(family).Int(query.Before).Int(query.Limit + 1);
            var items = new List<AuditEntry>();
            await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    items.Add(new AuditEntry(FromMs(reader.GetInt64(1)), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.TextOrNull(5),
                        reader.GetString(6), reader.TextOrNull(7), reader.TextOrNull(8))
                    { Seq = reader.GetInt64(0) });
                }
            }
            long? next = null;
            if (items.Count > query.Limit)
            {
                items.RemoveAt(items.Count - 1);
                next = items[^1].Seq;
            }
            return new AuditPage(items, next);
        }, ct);
}
