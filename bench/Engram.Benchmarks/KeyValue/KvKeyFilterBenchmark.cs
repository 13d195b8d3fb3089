using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage;
using Engram.Core.Storage.Sqlite;

namespace Engram.Benchmarks.KeyValue;

/// <summary>
/// <c>kv-filter</c> (issue 20): how long a build of the key filter (KvKeyFilter) of a store with N keys takes: the scan
/// of the tables and the filter made from it, as the writer does at a catch-up of a store of up to 250,000 history rows
/// (past that the scan runs on a reader). Writes N keys with 100-byte values (MSETs of 1,000), closes the store so
/// everything is folded, reopens it and builds the filter three times on the writer's thread. Options: --keys N
/// (default 1,000,000), --data-root DIR.
/// </summary>
public static class KvKeyFilterBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var keys = 1_000_000;
        string? root = null;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--keys":
                    keys = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--data-root":
                    root = args[++i];
                    break;
                default:
                    Console.Error.WriteLine($"unknown option {args[i]}");
                    return 2;
            }
        }
        var folder = Directory.CreateTempSubdirectory(root is null ? "engram-kvfilter-" : Path.Combine(root, "engram-kvfilter-")).FullName;
        try
        {
            var caller = new Caller("default", "bench");
            var options = new KvOptions { Durability = WriteDurability.Relaxed };
            using var value = JsonDocument.Parse("\"" + new string('x', 100) + "\"");
            var writing = Stopwatch.StartNew();
            await using (var store = SqliteMemoryStore.Open(folder))
            {
                var kv = new KvService(store, options, TimeProvider.System, new Engram.Core.Operations.WriteGate());
                for (var start = 0; start < keys; start += 1000)
                {
                    var batch = Enumerable.Range(start, Math.Min(1000, keys - start))
                        .Select(i => (KvSetItem?)new KvSetItem($"swarm:task:{i:D9}", value.RootElement, 0)).ToList();
                    await kv.SetManyAsync(caller, batch);
                }
            }
            Console.WriteLine($"{keys:N0} keys written and folded in {writing.Elapsed.TotalSeconds:0.0} s; database {new FileInfo(Path.Combine(folder, "engram.db")).Length / 1048576.0:0} MB");
            var opening = Stopwatch.StartNew();
            await using (var store = SqliteMemoryStore.Open(folder))
            {
                Console.WriteLine($"reopened in {opening.Elapsed.TotalMilliseconds:0} ms (past 250,000 history rows a reader scans for the filter after the open)");
                for (var round = 1; round <= 3; round++)
                {
                    var took = await store.RebuildKvKeyFilterAsync();
                    Console.WriteLine($"build {round}: {took.TotalMilliseconds:0} ms for {keys:N0} keys ({took.TotalMilliseconds * 1000 / keys:0.00} µs a key), filter {store.KeyFilterBytes / 1048576.0:0.0} MB");
                }
            }
            return 0;
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
