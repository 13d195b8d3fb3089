using System.Globalization;
using Engram.Core.Llm;
using Npgsql;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// Extraction jobs and their raw conversations. Workers of every instance claim with FOR UPDATE SKIP LOCKED, so two
/// never take the same job; a lease that runs out (the worker or its instance died) makes it claimable again.
/// </summary>
public sealed partial class PostgresMemoryStore : IExtractionJobStore
{
    public Task EnqueueExtractionAsync(ExtractionJob job, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            var at = job.CreatedAt.ToUnixTimeMilliseconds();
            await using (var insert = Command(c, "INSERT INTO conversations(id, tenant, body, created_at) VALUES ($1, $2, $3, $4)")
                .Text(job.ConversationId).Text(job.Tenant).Text(ExtractionJobRows.Body(job)).Int(at))
            {
                await insert.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            await using (var history = Command(c,
                "INSERT INTO conversation_history(tenant, conversation_id, event, actor, at, detail) VALUES ($1, $2, 'created', $3, $4, $5)")
                .Text(job.Tenant).Text(job.ConversationId).Text(job.Actor).Int(at).Text(job.Id))
            {
                await history.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            await using (var queued = Command(c,
                "INSERT INTO extraction_jobs(id, tenant, conversation_id, actor, status, attempts, next_attempt_at, created_at, updated_at) " +
                "VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $7)")
                .Text(job.Id).Text(job.Tenant).Text(job.ConversationId).Text(job.Actor).Text(job.Status).Int(job.NextAttemptAt.ToUnixTimeMilliseconds()).Int(at))
            {
                await queued.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            return 0;
        }, ct);

    public Task<ExtractionJob?> ClaimExtractionJobAsync(string owner, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            var nowMs = now.ToUnixTimeMilliseconds();
            string? id;
            await using (var claim = Command(c,
                "UPDATE extraction_jobs SET status = 'running', attempts = attempts + 1, lease_owner = $2, lease_until = $3, updated_at = $1 " +
                "WHERE id = (SELECT id FROM extraction_jobs WHERE " + string.Format(CultureInfo.InvariantCulture, ExtractionJobRows.DueCondition, "$1") +
                " ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id")
                .Int(nowMs).Text(owner).Int(leaseUntil.ToUnixTimeMilliseconds()))
            {
                id = await claim.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
            }
            return id is null ? null : await SelectJobAsync(Command(c, ExtractionJobRows.Select + " WHERE j.id = $1").Text(id), ct).ConfigureAwait(false);
        }, ct);

    public Task<bool> SaveExtractionJobAsync(ExtractionJob job, string owner, CancellationToken ct = default) =>
        WriteAsync(async c =>
        {
            bool changed;
            await using (var save = Command(c,
                "UPDATE extraction_jobs SET status = $3, next_attempt_at = $4, lease_owner = $5, lease_until = $6, plan = $7, applied = $8, memory_ids = $9, " +
                "error = $10, model = $11, updated_at = $12 WHERE id = $1 AND lease_owner = $2")
                .Text(job.Id).Text(owner).Text(job.Status).Int(job.NextAttemptAt.ToUnixTimeMilliseconds()).Text(job.LeaseOwner).Int(ToMs(job.LeaseUntil))
                .Text(ExtractionJobRows.Plan(job)).Text(ExtractionJobRows.Applied(job)).Text(ExtractionJobRows.MemoryIds(job)).Text(job.Error).Text(job.Model)
                .Int(job.UpdatedAt.ToUnixTimeMilliseconds()))
            {
                changed = await save.ExecuteNonQueryAsync(ct).ConfigureAwait(false) > 0;
            }
            if (changed && job.IsFinished)
            {
                await using var history = Command(c,
                    "INSERT INTO conversation_history(tenant, conversation_id, event, actor, at, detail) VALUES ($1, $2, $3, $4, $5, $6)")
                    .Text(job.Tenant).Text(job.ConversationId).Text("extraction_" + job.Status).Text(job.Model is null ? "system:extraction" : "llm:" + job.Model)
                    .Int(job.UpdatedAt.ToUnixTimeMilliseconds()).Text(job.Id);
                await history.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
            }
            return changed;
        }, ct);

    public Task<ExtractionJob?> GetExtractionJobAsync(string tenant, string id, CancellationToken ct = default) =>
        ReadAsync(c => SelectJobAsync(Command(c, ExtractionJobRows.Select + " WHERE j.id = $1 AND j.tenant = $2").Text(id).Text(tenant), ct), ct);

    public Task<IReadOnlyList<ExtractionJob>> ListRecentExtractionJobsAsync(string tenant, int limit, CancellationToken ct = default) =>
        ReadAsync<IReadOnlyList<ExtractionJob>>(async c =>
        {
            await using var command = Command(c, ExtractionJobRows.Select + " WHERE j.tenant = $1 ORDER BY j.created_at DESC, j.id DESC LIMIT $2").Text(tenant).Int(limit);
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            var jobs = new List<ExtractionJob>();
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                jobs.Add(ExtractionJobRows.Read(new PostgresRow(reader)));
            }
            return jobs;
        }, ct);

    public Task<long> CountPendingExtractionJobsAsync(string? tenant, CancellationToken ct = default) =>
        ReadAsync(async c =>
        {
            await using var count = Command(c, "SELECT count(*) FROM extraction_jobs WHERE status IN ('queued', 'running') AND ($1::text IS NULL OR tenant = $1)")
                .Text(tenant);
            return (long)(await count.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
        }, ct);

    private static async Task<ExtractionJob?> SelectJobAsync(NpgsqlCommand command, CancellationToken ct)
    {
        await using var owned = command;
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await reader.ReadAsync(ct).ConfigureAwait(false) ? ExtractionJobRows.Read(new PostgresRow(reader)) : null;
    }
}
