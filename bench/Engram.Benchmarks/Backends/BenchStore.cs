using Engram.Core.Embeddings;
using Engram.Server;

namespace Engram.Benchmarks.Backends;

/// <summary>
/// A store one scenario runs on, removed afterwards: a SQLite data folder, or a PostgreSQL database plus a
/// folder under which each instance keeps its own files (the lock, nothing else: PostgreSQL instances keep no
/// index snapshot). <see cref="Configure"/> points a server at it with the GloVe builtin embedder.
/// </summary>
public sealed class BenchStore(string? url, string folder, Func<Task> remove) : IAsyncDisposable
{
    /// <summary>The PostgreSQL URL (--store); null for SQLite.</summary>
    public string? Url { get; } = url;

    /// <summary>
    /// The data folder of instance <paramref name="instance"/>. On SQLite every instance gets the store's one
    /// folder (a second server there is refused); on PostgreSQL each its own.
    /// </summary>
    public string InstanceFolder(int instance)
    {
        if (Url is null)
        {
            return folder;
        }
        var path = Path.Combine(folder, $"instance-{instance}");
        Directory.CreateDirectory(path);
        return path;
    }

    public void Configure(EngramServerOptions options, int instance = 0)
    {
        options.DataPath = InstanceFolder(instance);
        options.Store = Url;
        options.Embeddings.Provider = EmbeddingSettings.Builtin;
    }

    /// <summary>What an <c>engram serve</c> child needs besides --data and --store: the builtin embedder, limits that never refuse the bench's one client.</summary>
    public static IReadOnlyDictionary<string, string> ChildEnvironment { get; } = new Dictionary<string, string>
    {
        ["ENGRAM_EMBEDDINGS"] = EmbeddingSettings.Builtin,
        ["Engram__RateLimit__PermitsPerSecond"] = "1000000",
        ["Engram__RateLimit__Burst"] = "100000000",
        ["Engram__RateLimit__MaxConcurrentRequests"] = "100000",
    };

    public async ValueTask DisposeAsync() => await remove();
}
