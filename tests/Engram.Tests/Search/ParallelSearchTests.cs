using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

public sealed class ParallelSearchTests
{
    [Fact]
    public async Task TheTwoThreadPath_AnswersExactlyLikeTheOneThreadPath()
    {
        using var dir = new TempDirectory();
        var caller = Caller.Default("test");
        await using (var seed = EngramEngine.OpenSqlite(dir.Path))
        {
            var items = Enumerable.Range(0, 2_000).Select(i => (NewMemory?)new NewMemory
            {
                Content = $"note {i}: {(i % 4 == 0 ? "the deploy pipeline failed on staging" : i % 4 == 1 ? "lunch with the design team" : i % 4 == 2 ? "budget review for the offsite" : "rotate the database credentials")} #{i % 13}",
                UserId = i % 2 == 0 ? "a" : "b",
            }).ToList();
            foreach (var chunk in items.Chunk(1_000))
            {
                await seed.Memories.CreateBatchAsync(caller, chunk);
            }
        }

        async Task<List<(string, double)>> RunAsync(int threshold, string query, SearchFilters? filters)
        {
            await using var engine = EngramEngine.OpenSqlite(dir.Path, search: new SearchOptions { ParallelSearchThreshold = threshold });
            var result = await engine.Search.SearchAsync(caller, new SearchRequest { Query = query, K = 20, Filters = filters });
            return result.Results.Select(r => (r.Memory.Id, Math.Round(r.Score, 6))).ToList();
        }

        foreach (var (query, filters) in new (string, SearchFilters?)[] { ("deploy failed", null), ("database credentials", new SearchFilters { UserId = "b" }), ("team lunch", null) })
        {
            var serial = await RunAsync(int.MaxValue, query, filters);
            var parallel = await RunAsync(0, query, filters);
            serial.Should().HaveCount(20);
            parallel.Should().Equal(serial, query);
        }
    }
}
