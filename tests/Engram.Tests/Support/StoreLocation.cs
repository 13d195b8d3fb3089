using Engram.Core.Storage;

namespace Engram.Tests.Support;

/// <summary>The two backends the conformance tests run on.</summary>
public enum Backend
{
    Sqlite,
    Postgres,
}

/// <summary>
/// Where one test keeps its store: a fresh temporary folder (SQLite) or a fresh database on the test
/// run's PostgreSQL server (<see cref="PostgresServer"/>). <see cref="Value"/> is what --data or --store
/// takes; <see cref="Open"/> opens the store there (again, after a close, for the reopen tests).
/// </summary>
public sealed class StoreLocation : IDisposable
{
    private readonly TempDirectory? _folder;
    private Action? _drop;

    private StoreLocation(Backend backend, string value, TempDirectory? folder)
    {
        Backend = backend;
        Value = value;
        _folder = folder;
    }

    public Backend Backend { get; }

    public string Value { get; }

    public static async Task<StoreLocation> CreateAsync(Backend backend)
    {
        if (backend == Backend.Sqlite)
        {
            var folder = new TempDirectory();
            return new StoreLocation(backend, folder.Path, folder);
        }
        var server = await PostgresServer.GetAsync();
        var database = await server.CreateDatabaseAsync();
        return new StoreLocation(backend, server.Url(database), null) { _drop = () => server.DropDatabase(database) };
    }

    /// <summary>Synchronous for constructors and field initialisers (the server starts once per run).</summary>
    public static StoreLocation Create(Backend backend) => CreateAsync(backend).GetAwaiter().GetResult();

    public IMemoryStore Open(TimeProvider? clock = null) => StoreFactory.Open(Value, clock);

    /// <summary>Removes the folder, or drops the database (each is some megabytes; a full run makes hundreds).</summary>
    public void Dispose()
    {
        _folder?.Dispose();
        Interlocked.Exchange(ref _drop, null)?.Invoke();
    }
}
