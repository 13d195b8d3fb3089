using System.Diagnostics;
using Engram.Core;
using Engram.Core.Operations;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;
using Engram.Server.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Engram.Server.Operations;

/// <summary>
/// <c>engram doctor</c> in process: the configuration (every setting's validation, the listen addresses and TLS,
/// the data folder, API keys when listening beyond loopback, the memory budget against what the store needs), then
/// the server's own readiness checks (<see cref="HealthChecks"/>) on the data folder. Each problem says what to do.
/// </summary>
public static class Doctor
{
    /// <summary>
    /// Runs every check; <paramref name="dataPath"/>, <paramref name="store"/> (a postgres:// URL: the PostgreSQL store
    /// instead of the data folder's SQLite one) and <paramref name="urls"/> override the configuration.
    /// </summary>
    /// <param name="notices">Receives the notices of the store opened (<see cref="StoreNotice"/>), each also a warning check.</param>
    public static async Task<IReadOnlyList<HealthCheck>> RunAsync(IConfiguration configuration, string? dataPath, string? urls, CancellationToken ct = default,
        string? store = null, ICollection<StoreNotice>? notices = null)
    {
        var checks = new List<HealthCheck>();
        EngramServerOptions options;
        try
        {
            options = EngramServerOptions.Bind(configuration);
        }
        catch (OptionsValidationException ex)
        {
            checks.Add(Check("configuration", HealthChecks.Fail, 0, string.Join("; ", ex.Failures), "fix the setting named (appsettings.json, Engram__* or the operator variables)"));
            return checks;
        }
        if (dataPath is not null)
        {
            options.DataPath = dataPath;
        }
        if (store is not null)
        {
            options.Store = store;
        }
        // As serve reads them: --urls, the urls setting, ASPNETCORE_URLS (the web host's own variable).
        var listen = urls ?? configuration["urls"] ?? (Environment.GetEnvironmentVariable("ASPNETCORE_URLS") is { Length: > 0 } aspnet ? aspnet : null) ?? EngramServerOptions.DefaultUrls;
        var errors = options.Validate().Concat(ListenAddresses.CheckSyntax(listen)).Concat(TlsOptions.CheckUrls(listen, options.Tls)).ToList();
        checks.Add(errors.Count == 0
            ? Check("configuration", HealthChecks.Ok, 0, "every setting is valid", null)
            : Check("configuration", HealthChecks.Fail, 0, string.Join("; ", errors), "fix the settings named (appsettings.json, Engram__* or the operator variables); docs/CONFIGURATION.md"));
        var unknown = UnknownSettings.Find(configuration);
        checks.Add(unknown.Count == 0
            ? Check("settings", HealthChecks.Ok, 0, "every setting given is one Engram reads", null)
            : Check("settings", HealthChecks.Warn, 0, "ignored: " + string.Join("; ", unknown), "correct or remove them; docs/CONFIGURATION.md lists every setting"));
        checks.Add(Tls(options));
        var postgres = StoreFactory.IsPostgres(options.StoreLocation);
        checks.Add(postgres && !Directory.Exists(Path.GetFullPath(options.DataPath))
            ? Check("data_folder", HealthChecks.Ok, 0, $"{Path.GetFullPath(options.DataPath)} does not exist yet: the server creates it for its own files (PostgreSQL holds the store)", null)
            : DataFolder(options.DataPath));
        checks.Add(!options.Backup.Enabled
            ? Check("backup_folder", HealthChecks.Ok, 0, "scheduled backups are off (Engram:Backup:Enabled=false)", null)
            : BackupFile.FolderProblem(options.Backup.FolderFor(options.DataPath)) is { } backupProblem
                ? Check("backup_folder", HealthChecks.Fail, 0, backupProblem + ": the server refuses to start",
                    "set Engram:Backup:Directory to a folder the server's user can write, or turn scheduled backups off (Engram:Backup:Enabled=false)")
                : Check("backup_folder", HealthChecks.Ok, 0, $"{options.Backup.FolderFor(options.DataPath)} takes backups", null));
        if (!postgres && !File.Exists(Path.Combine(Path.GetFullPath(options.DataPath), SqliteMemoryStore.FileName)))
        {
            checks.Add(Check("store", HealthChecks.Fail, 0, $"no Engram database in {Path.GetFullPath(options.DataPath)}",
                "pass --data DIR (or ENGRAM_DATA) naming the server's data folder; a new server creates the store at its first start"));
            return checks;
        }
        if (!postgres)
        {
            checks.Add(JournalsSetAside(options.DataPath));
        }
        if (errors.Count > 0 && !errors.TrueForAll(e => e.StartsWith("an https://", StringComparison.Ordinal)))
        {
            return checks; // the engine cannot be built from invalid settings
        }

        var started = Stopwatch.GetTimestamp();
        IMemoryStore opened;
        try
        {
            opened = postgres ? StoreFactory.Open(options.StoreLocation) : SqliteMemoryStore.Open(options.DataPath, TimeProvider.System, maxReaders: 2);
        }
        catch (StoreException ex) when (postgres)
        {
            // The message names host, port and database, never the password (PostgresMemoryStore.Open).
            checks.Add(Check("store", HealthChecks.Fail, Stopwatch.GetElapsedTime(started).TotalMilliseconds, $"postgres {StoreFactory.Describe(options.StoreLocation)}: {ex.Message}",
                "start PostgreSQL or fix the network path (pg_isready -h HOST -p PORT), and check the URL's user, password and database"));
            return checks;
        }
        await using var engine = new EngramEngine(opened, options.Limits, options.Search, options.Embeddings.CreateProvider(options.Outbound));
        var nonLoopback = ListenAddresses.FirstNonLoopback(listen, configuration);
        checks.Add(await KeysAsync(engine, nonLoopback, options.DataPath, ct).ConfigureAwait(false));
        await engine.EnsureIndexedAsync().WaitAsync(ct).ConfigureAwait(false);
        var loadMs = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        checks.Add(Budget(options, loadMs));
        var report = await new HealthChecks(engine, options).RunAsync(ct).ConfigureAwait(false);
        var opens = opened is IStoreNotices recorded ? recorded.OpenNotices : [];
        foreach (var notice in opens)
        {
            notices?.Add(notice);
        }
        checks.AddRange(WithEachNotice(report.Checks.Where(c => c.Name != "memory").ToList(), opens));
        if (options.ReadOnly)
        {
            checks.RemoveAll(c => c.Name == "read_only");
            checks.Add(Check("read_only", HealthChecks.Warn, 0, "READONLY_MODE is set: every write is refused", "unset READONLY_MODE (Engram:ReadOnly) when the maintenance is over"));
        }
        return checks;
    }

    /// <summary>
    /// <paramref name="checks"/> with the store's notices check (<see cref="HealthChecks.NoticesCheck"/>) replaced by one warning
    /// per notice, each with its fix, when the notices are known (in process, or an admin's <c>/health</c>).
    /// </summary>
    public static List<HealthCheck> WithEachNotice(List<HealthCheck> checks, IReadOnlyList<StoreNotice> notices)
    {
        var at = checks.FindIndex(c => c.Name == HealthChecks.NoticesCheck);
        if (at < 0 || notices.Count == 0)
        {
            return checks;
        }
        checks.RemoveAt(at);
        checks.InsertRange(at, notices.Select(n => Check("store_notice", HealthChecks.Warn, 0,
            $"[{n.Kind}] {n.Message} (at {n.Time.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z)", StoreNotice.FixFor(n.Kind))));
        return checks;
    }

    private static HealthCheck Tls(EngramServerOptions options)
    {
        if (!options.Tls.Enabled)
        {
            return Check("tls", HealthChecks.Ok, 0, "off (plain HTTP; put a TLS proxy in front when listening beyond loopback)", null);
        }
        try
        {
            using var certificate = options.Tls.LoadCertificate();
            var left = certificate.NotAfter.ToUniversalTime() - DateTime.UtcNow;
            return left < TimeSpan.FromDays(14)
                ? Check("tls", HealthChecks.Warn, 0, $"the certificate expires {certificate.NotAfter:yyyy-MM-dd} ({left.TotalDays:0} days)", "renew the certificate and restart the server")
                : Check("tls", HealthChecks.Ok, 0, $"certificate valid until {certificate.NotAfter:yyyy-MM-dd}", null);
        }
        catch (OptionsValidationException ex)
        {
            return Check("tls", HealthChecks.Fail, 0, string.Join("; ", ex.Failures), "fix Engram:Tls:CertificatePath / KeyPath / ENGRAM_TLS_PASSWORD");
        }
    }

    /// <summary>
    /// Key-value journals an open set aside (<c>engram.db-kvjournal.foreign-…</c>, <c>.damaged-…</c>): the open's notice lasts
    /// as long as that process, the file is what is left to say so. A foreign one holds acknowledged writes of another
    /// database; a damaged one is a copy kept for inspection. A warning until the operator has dealt with them.
    /// </summary>
    private static HealthCheck JournalsSetAside(string dataPath)
    {
        var folder = Path.GetFullPath(dataPath);
        var prefix = SqliteMemoryStore.KvJournalFileName + ".";
        var aside = Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder, prefix + "*").Select(Path.GetFileName).Where(n => n is not null &&
                (n.StartsWith(prefix + "foreign-", StringComparison.Ordinal) || n.StartsWith(prefix + "damaged-", StringComparison.Ordinal)))
                .Order(StringComparer.Ordinal).ToList()
            : [];
        return aside.Count == 0
            ? Check("kv_journal_set_aside", HealthChecks.Ok, 0, "no key-value journal set aside", null)
            : Check("kv_journal_set_aside", HealthChecks.Warn, 0,
                $"{aside.Count} key-value journal(s) set aside in {folder}: {string.Join(", ", aside)} (foreign: acknowledged writes of " +
                "another database; damaged: a copy of a journal whose intact records were applied)",
                "see RUNBOOK.md section 10: put a foreign journal back beside its own database (as engram.db-kvjournal) and open that " +
                "store to apply it; keep a damaged copy until it is inspected; then delete them");
    }

    private static HealthCheck DataFolder(string dataPath)
    {
        var folder = Path.GetFullPath(dataPath);
        if (!Directory.Exists(folder))
        {
            return Check("data_folder", HealthChecks.Fail, 0, $"{folder} does not exist", "create it, or pass --data DIR naming the server's data folder");
        }
        var probe = Path.Combine(folder, $".engram-doctor-{Environment.ProcessId}");
        try
        {
            File.WriteAllText(probe, "probe");
            File.Delete(probe);
            return Check("data_folder", HealthChecks.Ok, 0, $"{folder} is writable", null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Check("data_folder", HealthChecks.Fail, 0, $"{folder} is not writable: {ex.Message}",
                "give the server's user write access (chown/chmod), or mount the volume read-write");
        }
    }

    private static async Task<HealthCheck> KeysAsync(EngramEngine engine, string? nonLoopback, string dataPath, CancellationToken ct)
    {
        var keys = await ((IApiKeyStore)engine.Store).ListApiKeysAsync(null, ct).ConfigureAwait(false);
        var now = DateTimeOffset.UtcNow;
        var active = keys.Count(k => k.RevokedAt is null && (k.ExpiresAt is null || k.ExpiresAt > now));
        if (active > 0)
        {
            return Check("api_keys", HealthChecks.Ok, 0, $"{active} active key(s)", null);
        }
        return nonLoopback is null
            ? Check("api_keys", HealthChecks.Ok, 0, "no API keys: open mode, served on loopback only", null)
            : Check("api_keys", HealthChecks.Fail, 0, $"no API keys, but the server would listen on {nonLoopback}: it refuses to start",
                $"create a key first: engram keys create --data {dataPath} --tenant default --role admin (or listen on 127.0.0.1 only)");
    }

    /// <summary>
    /// What the store needs is measured, not guessed: this process's working set after loading the store's indexes
    /// (as a server does at start). A budget under that (over 85 % of it used right away) sheds writes from the start.
    /// </summary>
    private static HealthCheck Budget(EngramServerOptions options, double loadMs)
    {
        var budget = MemoryBudget.Resolve(options.Memory.BudgetMB);
        var needed = MemoryMonitor.WorkingSet();
        var detail = $"budget {HealthChecks.Mb(budget.Bytes)} ({budget.Source}); loading the indexes took {HealthChecks.Mb(needed)} in {loadMs / 1000:0.0} s";
        return needed >= budget.Bytes * MemoryMonitor.WarnRatio
            ? Check("memory_budget", HealthChecks.Fail, 0, detail + ": above 85 % before any traffic",
                $"raise ENGRAM_MEMORY_BUDGET_MB to at least {needed / 0.7 / (1024 * 1024):0} (leaves room for caches and requests)")
            : Check("memory_budget", HealthChecks.Ok, 0, detail, null);
    }

    private static HealthCheck Check(string name, string status, double ms, string detail, string? fix) => new(name, status, ms, detail, fix);
}
