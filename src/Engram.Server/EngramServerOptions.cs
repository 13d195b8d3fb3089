using Engram.Core.Configuration;
using Engram.Core.Embeddings;
using Engram.Core.KeyValue;
using Engram.Core.Net;
using Engram.Core.Search;
using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Engram.Server;

/// <summary>
/// Everything the host needs, bound from the <c>Engram</c> configuration section
/// (appsettings.json, <c>Engram__X</c> environment variables, ENGRAM_DATA) and overridden by CLI flags.
/// </summary>
public sealed class EngramServerOptions
{
    public const string Section = "Engram";
    public const string DefaultUrls = "http://127.0.0.1:7070";

    /// <summary>The data folder holding engram.db. Default <c>./data</c>.</summary>
    public string DataPath { get; set; } = "data";

    /// <summary>
    /// A PostgreSQL database to keep the store in instead of SQLite: <c>postgres://user:password@host:port/database</c>
    /// (DATABASE_URL, --store). Empty: the SQLite store in <see cref="DataPath"/>, which still holds this instance's own files.
    /// </summary>
    public string? Store { get; set; }

    /// <summary>Where the store is: the PostgreSQL URL when one is set, else the data folder (see <see cref="Core.Storage.StoreFactory"/>).</summary>
    public string StoreLocation => string.IsNullOrWhiteSpace(Store) ? DataPath : Store;

    public MemoryLimits Limits { get; set; } = new();

    public SearchOptions Search { get; set; } = new();

    public EmbeddingSettings Embeddings { get; set; } = new();

    /// <summary>Key-value state: value size limit, default TTL (MEMORY_DEFAULT_TTL_SECONDS), list and batch limits.</summary>
    public KvOptions KeyValue { get; set; } = new();

    /// <summary>API keys and the audit log: OpenMetrics, AuditMaxRows, KeyCacheSize.</summary>
    public AuthOptions Auth { get; set; } = new();

    /// <summary>Scheduled backups: Enabled, Directory, Schedule, retention (Hourly, Daily, Weekly, Monthly).</summary>
    public Core.Operations.BackupOptions Backup { get; set; } = new();

    /// <summary>Save the indexes next to the store (engram.index) for a fast start.</summary>
    public bool IndexSnapshots { get; set; } = true;

    /// <summary>
    /// Where this instance's index snapshot lives (Engram:IndexSnapshotPath); empty: engram.index in the data
    /// folder. With PostgreSQL every instance keeps its own (its own --data folder, or this setting): a snapshot
    /// records the store's id and the seq it reflects, so a restart loads it and reads only the log after it.
    /// </summary>
    public string? IndexSnapshotPath { get; set; }

    /// <summary>The snapshot file this instance reads and writes; null when <see cref="IndexSnapshots"/> is off.</summary>
    public string? SnapshotFile() => !IndexSnapshots
        ? null
        : string.IsNullOrWhiteSpace(IndexSnapshotPath)
            ? Path.Combine(Path.GetFullPath(DataPath), Core.Search.IndexSnapshot.FileName)
            : Path.GetFullPath(IndexSnapshotPath);

    /// <summary>How often the snapshot is rewritten while the index changes (also on shutdown).</summary>
    public int SnapshotIntervalSeconds { get; set; } = 600;

    /// <summary>How often the TTL sweeper deletes expired memories.</summary>
    public int SweepIntervalSeconds { get; set; } = 60;

    // Limits, TLS, CORS and outbound hosts (issue 11). See docs/CONFIGURATION.md.

    /// <summary>Per-caller token bucket and requests in flight (429 with Retry-After past them).</summary>
    public RateLimitOptions RateLimit { get; set; } = new();

    /// <summary>A request still running after this many seconds is stopped and answered 503; 0 = no limit.</summary>
    public int RequestTimeoutSeconds { get; set; } = 30;

    /// <summary>The HTTPS certificate and HSTS.</summary>
    public TlsOptions Tls { get; set; } = new();

    /// <summary>Browser origins allowed by CORS (none: CORS off); also the MCP Origin check.</summary>
    public CorsSettings Cors { get; set; } = new();

    /// <summary>The optional language model (LLM_BASE_URL, LLM_MODEL, LLM_API_KEY): extraction, chat, the proxy, reflections.</summary>
    public Core.Llm.LlmOptions Llm { get; set; } = new();

    /// <summary>Reflections and consolidation (Engram:Reflect): IntervalMinutes, Enabled, DuplicateThreshold, per-run bounds.</summary>
    public Core.Reflection.ReflectionOptions Reflect { get; set; } = new();

    /// <summary>The Telegram Bot API (TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE_URL): the chat bot and the Telegram alert channel.</summary>
    public Telegram.TelegramOptions Telegram { get; set; } = new();

    /// <summary>Alerts evaluated inside Engram (issue 19): channels (Telegram chat ids, a signed webhook), thresholds, cooldown.</summary>
    public Alerts.AlertOptions Alerts { get; set; } = new();

    /// <summary>Memory-event webhooks (issue 19): receivers, secret, events, retries.</summary>
    public Webhooks.WebhookOptions Webhooks { get; set; } = new();

    /// <summary>Hosts outbound requests may go to besides the configured endpoints.</summary>
    public OutboundOptions Outbound { get; set; } = new();

    /// <summary>Refuse every write of memories, key-value state and the graph (READONLY_MODE); reads keep working.</summary>
    public bool ReadOnly { get; set; }

    /// <summary>The process's memory budget (ENGRAM_MEMORY_BUDGET_MB) and its 85 % warning.</summary>
    public Operations.MemoryBudgetOptions Memory { get; set; } = new();

    /// <summary>Readiness thresholds: free disk, index lag.</summary>
    public Operations.HealthOptions Health { get; set; } = new();

    /// <summary>The Redis protocol endpoint for key-value state (ENGRAM_RESP, --resp); off by default.</summary>
    public Resp.RespOptions Resp { get; set; } = new();

    /// <summary>
    /// Binds the <c>Engram</c> section of <paramref name="configuration"/>. A value of the wrong type
    /// (MEMORY_DEFAULT_TTL_SECONDS=soon, Durability=Fast) is the operator's to fix, so it becomes an
    /// <see cref="OptionsValidationException"/> naming the setting, not a binder stack trace.
    /// </summary>
    public static EngramServerOptions Bind(IConfiguration configuration)
    {
        var options = new EngramServerOptions();
        try
        {
            configuration.GetSection(Section).Bind(options);
        }
        catch (InvalidOperationException ex)
        {
            throw new OptionsValidationException(Section, typeof(EngramServerOptions), [DescribeBindFailure(ex)]);
        }
        return options;
    }

    /// <summary>
    /// The binder's "Failed to convert configuration value 'maybe' at 'Engram:ReadOnly' to type 'System.Boolean'" as
    /// "Engram:ReadOnly (READONLY_MODE) must be true or false (got 'maybe')": the variable the operator set, and what the
    /// setting takes, in the words of the other settings' checks.
    /// </summary>
    internal static string DescribeBindFailure(InvalidOperationException exception)
    {
        var match = System.Text.RegularExpressions.Regex.Match(exception.Message,
            "^Failed to convert configuration value '(?<value>.*)' at '(?<key>[^']+)' to type '(?<type>[^']+)'", System.Text.RegularExpressions.RegexOptions.Singleline);
        if (!match.Success)
        {
            return exception.Message + " " + exception.InnerException?.Message;
        }
        var key = match.Groups["key"].Value;
        var variable = ServerApplication.OperatorVariables.FirstOrDefault(v => string.Equals($"{Section}:{v.Key}", key, StringComparison.OrdinalIgnoreCase)).Variable;
        var named = variable is not null && Environment.GetEnvironmentVariable(variable) is { Length: > 0 }
            ? $"{key} ({variable})"
            : $"{key} ({key.Replace(":", "__", StringComparison.Ordinal)})";
        const string Nullable = "System.Nullable`1[";
        var type = match.Groups["type"].Value;
        if (type.StartsWith(Nullable, StringComparison.Ordinal))
        {
            type = type[Nullable.Length..^1]; // an optional setting takes what its type takes
        }
        var takes = type switch
        {
            "System.Boolean" => "true or false",
            "System.Int32" or "System.Int64" => "a whole number",
            "System.Double" or "System.Single" => "a number",
            "System.TimeSpan" => "a time span such as 00:30:00",
            _ when EnumNamed(type) is { } names => "one of " + names,
            _ => "a value of another kind",
        };
        var value = match.Groups["value"].Value;
        return $"{named} must be {takes} (got '{(value.Length > 40 ? value[..40] + "…" : value)}')";
    }

    private static string? StoreUrlProblem(string url)
    {
        try
        {
            Core.Storage.Postgres.PostgresUrl.ToConnectionString(url);
            return null;
        }
        catch (Core.Storage.StoreException ex)
        {
            return ex.Message;
        }
    }

    /// <summary>The names of the enum type <paramref name="fullName"/> (one of Engram's settings), or null when it is no enum.</summary>
    private static string? EnumNamed(string fullName) =>
        AppDomain.CurrentDomain.GetAssemblies().Select(a => a.GetType(fullName)).FirstOrDefault(t => t is not null) is { IsEnum: true } type
            ? string.Join(", ", Enum.GetNames(type))
            : null;

    public IEnumerable<string> Validate()
    {
        if (!string.IsNullOrWhiteSpace(Store) && !Core.Storage.StoreFactory.IsPostgres(Store))
        {
            yield return "Engram:Store (DATABASE_URL, --store) must be a postgres://user:password@host:port/database URL";
        }
        else if (!string.IsNullOrWhiteSpace(Store) && StoreUrlProblem(Store) is { } problem)
        {
            yield return $"Engram:Store (DATABASE_URL, --store): {problem}"; // a setting to fix (exit 1), not a store that failed
        }
        if (string.IsNullOrWhiteSpace(DataPath))
        {
            yield return "Engram:DataPath (ENGRAM_DATA, --data) must name a folder";
        }
        if (SnapshotIntervalSeconds < 1)
        {
            yield return "Engram:SnapshotIntervalSeconds must be at least 1";
        }
        if (SweepIntervalSeconds < 1)
        {
            yield return "Engram:SweepIntervalSeconds must be at least 1";
        }
        if (RequestTimeoutSeconds is < 0 or > 86_400)
        {
            yield return "Engram:RequestTimeoutSeconds must be between 0 (no limit) and 86400";
        }
        foreach (var error in Llm.Validate().Concat(Reflect.Validate()).Concat(Telegram.Validate())
                     .Concat(Alerts.Validate(Telegram.Enabled)).Concat(Webhooks.Validate()))
        {
            yield return error;
        }
        foreach (var error in Backup.Validate())
        {
            yield return error;
        }
        foreach (var error in RateLimit.Validate().Concat(Tls.Validate()).Concat(Cors.Validate()).Concat(Outbound.Validate()))
        {
            yield return error;
        }
        foreach (var error in Limits.Validate().Concat(Search.Validate()).Concat(KeyValue.Validate()).Concat(Embeddings.Validate()).Concat(Auth.Validate())
                     .Concat(Memory.Validate()).Concat(Health.Validate()).Concat(Resp.Validate()))
        {
            yield return error;
        }
    }
}
