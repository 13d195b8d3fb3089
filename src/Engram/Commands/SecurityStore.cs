using System.Globalization;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;

namespace Engram.Cli.Commands;

/// <summary>
/// The store, API keys and audit log of a data folder for <c>engram keys</c> and <c>engram audit</c>.
/// Opened in process without the serve lock, so it works beside a running server (which sees key
/// changes within about a second). Changes are audited with the actor <c>cli</c>.
/// </summary>
internal sealed class SecurityStore : IAsyncDisposable
{
    public const string Actor = "cli";

    private readonly IMemoryStore _store;

    private SecurityStore(IMemoryStore store, int auditMaxRows)
    {
        _store = store;
        Audit = new AuditTrail((IAuditLog)store, auditMaxRows);
        Keys = new ApiKeyService((IApiKeyStore)store, Audit);
    }

    public ApiKeyService Keys { get; }

    public AuditTrail Audit { get; }

    public IAuditLog Log => (IAuditLog)_store;

    /// <param name="create">Create the folder and store when missing (a key made before the first serve).</param>
    public static SecurityStore Open(string? data, bool create, string? store = null)
    {
        var location = StoreOption.Resolve(store, data);
        if (StoreFactory.IsPostgres(location))
        {
            return new SecurityStore(StoreFactory.Open(location), Client.ConfiguredOptions.Load().Auth.AuditMaxRows);
        }
        var folder = Path.GetFullPath(location);
        if (!create && !File.Exists(Path.Combine(folder, SqliteMemoryStore.FileName)))
        {
            throw new NotFoundException($"no Engram database in '{folder}'; pass --data DIR");
        }
        var options = Client.ConfiguredOptions.Load();
        return new SecurityStore(SqliteMemoryStore.Open(folder), options.Auth.AuditMaxRows);
    }

    public async ValueTask DisposeAsync()
    {
        await Audit.DisposeAsync();
        await _store.DisposeAsync();
    }

    /// <summary>
    /// A time given on the command line: ISO 8601 (<c>2027-01-31</c>, <c>2027-01-31T12:00:00Z</c>; UTC unless
    /// an offset is given) or relative to now (<c>30d</c>, <c>12h</c>, <c>45m</c>, <c>2w</c>), forward for an
    /// expiry and back for a <c>--since</c>.
    /// </summary>
    public static DateTimeOffset ParseTime(string text, string flag, bool past, DateTimeOffset now)
    {
        var trimmed = text.Trim();
        if (trimmed.Length >= 2 && long.TryParse(trimmed[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var amount) && amount <= 100_000)
        {
            TimeSpan? span = char.ToLowerInvariant(trimmed[^1]) switch
            {
                's' => TimeSpan.FromSeconds(amount),
                'm' => TimeSpan.FromMinutes(amount),
                'h' => TimeSpan.FromHours(amount),
                'd' => TimeSpan.FromDays(amount),
                'w' => TimeSpan.FromDays(7 * amount),
                _ => null,
            };
            if (span is { } s)
            {
                return past ? now - s : now + s;
            }
        }
        if (DateTimeOffset.TryParse(trimmed, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
        {
            return at;
        }
        throw new ValidationException(flag, $"{flag} must be an ISO date or time (2027-01-31, 2027-01-31T12:00:00Z) or a span such as 30d, 12h, 45m (got '{text}')");
    }
}
