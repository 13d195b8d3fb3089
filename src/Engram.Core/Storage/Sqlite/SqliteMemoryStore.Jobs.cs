using Engram.Core.Llm;

using static Engram.Core.Storage.StoreRows;

namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Extraction jobs and their raw conversations: the single writer serialises claims, so a job is taken by one worker
/// at a time; a lease that runs out (the worker died) makes it claimable again.
/// </summary>
public sealed partial class SqliteMemoryStore : IExtractionJobStore
{
    public Task EnqueueExtractionAsync(ExtractionJob job, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            var at = job.CreatedAt.ToUnixTimeMilliseconds();
            c.ExecuteNonQuery("INSERT INTO conversations(id, tenant, body, created_at) VALUES (?1, ?2, ?3, ?4)",
                job.ConversationId, job.Tenant, ExtractionJobRows.Body(job), at);
            c.ExecuteNonQuery("INSERT INTO conversation_history(tenant, conversation_id, event, actor, at, detail) VALUES (?1, ?2, 'created', ?3, ?4, ?5)",
                job.Tenant, job.ConversationId, job.Actor, at, job.Id);
            c.ExecuteNonQuery(
                "INSERT INTO extraction_jobs(id, tenant, conversation_id, actor, status, attempts, next_attempt_at, created_at, updated_at) " +
                "VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?7)",
                job.Id, job.Tenant, job.ConversationId, job.Actor, job.Status, job.NextAttemptAt.ToUnixTimeMilliseconds(), at);
            return 0;
        }, ct);

    public Task<ExtractionJob?> ClaimExtractionJobAsync(string owner, DateTimeOffset now, DateTimeOffset leaseUntil, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            var nowMs = now.ToUnixTimeMilliseconds();
            string? id;
            using (var find = c.Prepare("SELECT id FROM extraction_jobs WHERE " + string.Format(System.Globalization.CultureInfo.InvariantCulture, ExtractionJobRows.DueCondition, "?1") +
                " ORDER BY next_attempt_at, id LIMIT 1"))
            {
                find.Bind(1, nowMs);
                id = find.Step() ? find.GetText(0) : null;
            }
            if (id is null)
            {
                return null;
            }
            c.ExecuteNonQuery("UPDATE extraction_jobs SET status = 'running', attempts = attempts + 1, lease_owner = ?2, lease_until = ?3, updated_at = ?4 WHERE id = ?1",
                id, owner, leaseUntil.ToUnixTimeMilliseconds(), nowMs);
            return SelectJob(c, ExtractionJobRows.Select + " WHERE j.id = ?1", id);
        }, ct);

    public Task<bool> SaveExtractionJobAsync(ExtractionJob job, string owner, CancellationToken ct = default) =>
        WriteApartFromKvAsync(c =>
        {
            var changed = c.ExecuteNonQuery(
                "UPDATE extraction_jobs SET status = ?3, next_attempt_at = ?4, lease_owner = ?5, lease_until = ?6, plan = ?7, applied = ?8, memory_ids = ?9, " +
                "error = ?10, model = ?11, updated_at = ?12 WHERE id = ?1 AND lease_owner = ?2",
                job.Id, owner, job.Status, job.NextAttemptAt.ToUnixTimeMilliseconds(), job.LeaseOwner, ToMs(job.LeaseUntil), ExtractionJobRows.Plan(job),
                ExtractionJobRows.Applied(job), ExtractionJobRows.MemoryIds(job), job.Error, job.Model, job.UpdatedAt.ToUnixTimeMilliseconds()) > 0;
            if (changed && job.IsFinished)
            {
                c.ExecuteNonQuery("INSERT INTO conversation_history(tenant, conversation_id, event, actor, at, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    job.Tenant, job.ConversationId, "extraction_" + job.Status, job.Model is null ? "system:extraction" : "llm:" + job.Model,
                    job.UpdatedAt.ToUnixTimeMilliseconds(), job.Id);
            }
            return changed;
        }, ct);

    public Task<ExtractionJob?> GetExtractionJobAsync(string tenant, string id, CancellationToken ct = default) =>
        _readers.ReadAsync(c => SelectJob(c, ExtractionJobRows.Select + " WHERE j.id = ?1 AND j.tenant = ?2", id, tenant), ct).AsTask();

    public Task<IReadOnlyList<ExtractionJob>> ListRecentExtractionJobsAsync(string tenant, int limit, CancellationToken ct = default) =>
        _readers.ReadAsync<IReadOnlyList<ExtractionJob>>(c =>
        {
            using var statement = c.Prepare(ExtractionJobRows.Select + " WHERE j.tenant = ?1 ORDER BY j.created_at DESC, j.id DESC LIMIT ?2");
            statement.Bind(1, tenant);
            statement.Bind(2, (long)limit);
            var jobs = new List<ExtractionJob>();
            while (statement.Step())
            {
                jobs.Add(ExtractionJobRows.Read(statement));
            }
            return jobs;
        }, ct).AsTask();

    public Task<long> CountPendingExtractionJobsAsync(string? tenant, CancellationToken ct = default) =>
        _readers.ReadAsync(c => c.ScalarInt64("SELECT count(*) FROM extraction_jobs WHERE status IN ('queued', 'running') AND (?1 IS NULL OR tenant = ?1)", tenant) ?? 0, ct).AsTask();

    private static ExtractionJob? SelectJob(SqliteConnection c, string sql, params ReadOnlySpan<object?> parameters)
    {
        using var statement = c.Prepare(sql);
        for (var i = 0; i < parameters.Length; i++)
        {
            statement.Bind(i + 1, parameters[i]);
        }
        return statement.Step() ? ExtractionJobRows.Read(statement) : null;
    }
}
