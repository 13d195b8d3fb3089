using System.Diagnostics;
using System.Globalization;
using Engram.Benchmarks.Retrieval;
using Engram.Core;

namespace Engram.Benchmarks.Backends;

/// <summary>
/// PostgreSQL: a database per store on <see cref="BenchPostgres"/>; the loaded store is a database built once
/// (through the store, as a server would write it) and copied by <c>CREATE DATABASE … TEMPLATE</c> per run.
/// </summary>
public sealed class PostgresBenchBackend(BenchPostgres server, string dataRoot) : BenchBackend
{
    public override string Name => "PostgreSQL";

    public override async Task<BenchStore> FreshAsync() => Store(await server.CreateDatabaseAsync(ScratchName()));

    public override async Task<BenchStore> LoadedAsync(CorpusGenerator corpus, int count, int seed)
    {
        var cached = string.Create(CultureInfo.InvariantCulture, $"bench_corpus_{count}_seed{(uint)seed}");
        if (!await server.IsCompleteAsync(cached))
        {
            await Console.Error.WriteLineAsync($"building the PostgreSQL database {cached} ({count:N0} memories; kept for later runs)");
            var clock = Stopwatch.StartNew();
            await server.CreateDatabaseAsync(cached);
            await using (var engine = EngramEngine.Open(server.Url(cached)))
            {
                await CorpusLoader.LoadAsync(engine, corpus, count);
            }
            // A template must have no session left (the pool keeps idle ones).
            Npgsql.NpgsqlConnection.ClearAllPools();
            await server.MarkCompleteAsync(cached);
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"built {cached} in {clock.Elapsed.TotalSeconds:0.0} s"));
        }
        else
        {
            await Console.Error.WriteLineAsync($"using the cached PostgreSQL database {cached}");
        }
        return Store(await server.CreateDatabaseAsync(ScratchName(), template: cached));
    }

    private BenchStore Store(string database)
    {
        var folder = Path.Combine(dataRoot, "backends-pg-" + database);
        Directory.CreateDirectory(folder);
        return new BenchStore(server.Url(database), folder, async () =>
        {
            Npgsql.NpgsqlConnection.ClearAllPools();
            await server.DropDatabaseAsync(database);
            await RemoveFolderAsync(folder);
        });
    }

    private static string ScratchName() => "bench_scratch_" + Guid.NewGuid().ToString("N")[..12];
}
