using Engram.Cli.Client;
using Engram.Core.Search;
using Engram.Core.Storage;

namespace Engram.Cli.Commands;

/// <summary>
/// What <c>engram reindex</c> and <c>engram maintenance</c> work on: a data folder holding a SQLite store (its
/// snapshot beside it), or a PostgreSQL database and, since every instance on it keeps its own index snapshot,
/// the snapshot of the instance being maintained: Engram:IndexSnapshotPath when set, else engram.index in the
/// instance's folder (--data, else ENGRAM_DATA, else ./data when it exists), as <c>engram serve</c> finds it.
/// </summary>
internal sealed record StoreTarget(string Location, string? SnapshotPath)
{
    public bool IsPostgres => StoreFactory.IsPostgres(Location);

    public static StoreTarget Resolve(string? store, string? data)
    {
        var url = store ?? (data is null ? Environment.GetEnvironmentVariable(StoreOption.Variable) is { Length: > 0 } fromEnvironment ? fromEnvironment : null : null);
        if (url is null)
        {
            var folder = ReindexCommand.ExistingStore(data);
            return new StoreTarget(folder, Path.Combine(folder, IndexSnapshot.FileName));
        }
        StoreOption.Check(url);
        if (ConfiguredOptions.Load().IndexSnapshotPath is { Length: > 0 } configured)
        {
            return new StoreTarget(url, Path.GetFullPath(configured));
        }
        var instance = data ?? Environment.GetEnvironmentVariable(BackendOptions.DataVariable);
        if (instance is null)
        {
            instance = Directory.Exists(BackendOptions.DefaultData) ? BackendOptions.DefaultData : null;
        }
        else if (!Directory.Exists(instance))
        {
            throw new Core.Common.NotFoundException($"no folder '{Path.GetFullPath(instance)}': --data names the folder of the instance whose snapshot to use");
        }
        return new StoreTarget(url, instance is null ? null : Path.Combine(Path.GetFullPath(instance), IndexSnapshot.FileName));
    }
}
