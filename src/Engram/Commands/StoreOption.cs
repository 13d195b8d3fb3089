using System.CommandLine;
using Engram.Core.Common;
using Engram.Core.Storage;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>--store postgres://user:password@host:port/database</c>: the PostgreSQL store, for every command that
/// takes <c>--data</c>. Without it (and without <c>--data</c>) DATABASE_URL picks PostgreSQL; an explicit
/// <c>--data</c>, or nothing at all, is the SQLite store in a data folder.
/// </summary>
internal static class StoreOption
{
    public const string Variable = "DATABASE_URL";

    public static Option<string?> Create() => new("--store")
    {
        Description = $"A PostgreSQL database to use instead of a data folder: postgres://user:password@host:port/database (default ${Variable} when --data is not given).",
        HelpName = "URL",
    };

    /// <summary>Refuses a --store that is not a postgres:// URL.</summary>
    public static void Check(string? store)
    {
        if (store is not null && !StoreFactory.IsPostgres(store))
        {
            throw new ValidationException("--store", "--store must be a postgres://user:password@host:port/database URL (a data folder goes in --data)");
        }
    }

    /// <summary>
    /// The store location a command works on: --store, else an explicit --data, else DATABASE_URL, else
    /// ENGRAM_DATA, else ./data.
    /// </summary>
    public static string Resolve(string? store, string? data)
    {
        Check(store);
        if (store is not null && data is not null)
        {
            throw new ValidationException("--store", "give --store or --data, not both");
        }
        var location = store ?? data ?? EnvironmentValue(Variable) ?? EnvironmentValue(BackendOptions.DataVariable) ?? BackendOptions.DefaultData;
        if (location.Trim().Length == 0)
        {
            throw new ValidationException("--data", "--data must name a folder");
        }
        return location;
    }

    /// <summary>
    /// Like <see cref="Resolve"/>, for commands that read a store that must exist: a data folder must hold an
    /// Engram database (a PostgreSQL database is migrated on open like any other).
    /// </summary>
    public static string ResolveExisting(string? store, string? data) => Existing(Resolve(store, data), "pass --data DIR or --store postgres://...");

    /// <summary><paramref name="location"/> itself when it is a PostgreSQL URL or a folder holding a store (its full path); else <paramref name="hint"/> is said.</summary>
    public static string Existing(string location, string hint)
    {
        if (StoreFactory.IsPostgres(location))
        {
            return location;
        }
        var folder = Path.GetFullPath(location);
        return File.Exists(Path.Combine(folder, Core.Storage.Sqlite.SqliteMemoryStore.FileName))
            ? folder
            : throw new NotFoundException($"no Engram database in '{folder}'; {hint}");
    }

    private static string? EnvironmentValue(string name) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;
}
