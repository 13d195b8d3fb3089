using System.Diagnostics;
using System.Globalization;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Indexing;
using Engram.Core.Memories;
using Engram.Core.Search;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// Where a slow search spends its time: each query run in process through the search service, then its
/// two halves (BM25, vector) alone on the same index, with the garbage collections that happened during
/// the whole search. Prints the stage percentiles and the slowest queries with their breakdown.
/// </summary>
public static class E2eProfile
{
    public static async Task RunAsync(EngramEngine engine, IReadOnlyList<string> queries)
    {
        var caller = Caller.Default("bench");
        var rows = new List<(string Query, double Total, double Lexical, double Vector, double Embed, int Gc0, int Gc1, int Gc2, int Lexhits)>();
        var buffer = new ScoredDoc[100];
        foreach (var query in queries)
        {
            int g0 = GC.CollectionCount(0), g1 = GC.CollectionCount(1), g2 = GC.CollectionCount(2);
            var started = Stopwatch.GetTimestamp();
            await engine.Search.SearchAsync(caller, new SearchRequest { Query = query, K = 10 });
            var total = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            int d0 = GC.CollectionCount(0) - g0, d1 = GC.CollectionCount(1) - g1, d2 = GC.CollectionCount(2) - g2;

            started = Stopwatch.GetTimestamp();
            var vector = await engine.Embedder.EmbedQueryAsync(query);
            var embed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            var (lexical, vec, hits) = engine.Follower.Index.Read(index =>
            {
                var filter = new DocFilter(index.Docs, caller.Tenant, new MemoryFilter(), DateTimeOffset.UtcNow, null);
                var t = Stopwatch.GetTimestamp();
                var n = index.Lexical.Search(query, buffer, filter);
                var l = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                t = Stopwatch.GetTimestamp();
                index.SearchVectors(vector, buffer, filter);
                return (l, Stopwatch.GetElapsedTime(t).TotalMilliseconds, n);
            });
            rows.Add((query, total, lexical, vec, embed, d0, d1, d2, hits));
        }
        static double P(IEnumerable<double> values, double p)
        {
            var sorted = values.Order().ToArray();
            return sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p / 100 * sorted.Length) - 1)];
        }
        Console.WriteLine("in-process profile (ms)      p50     p95     p99     max");
        void Line(string label, Func<(string Query, double Total, double Lexical, double Vector, double Embed, int Gc0, int Gc1, int Gc2, int Lexhits), double> pick) =>
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label,-26} {P(rows.Select(pick), 50),7:0.00} {P(rows.Select(pick), 95),7:0.00} {P(rows.Select(pick), 99),7:0.00} {rows.Max(pick),7:0.00}"));
        Line("search service", r => r.Total);
        Line("bm25 alone", r => r.Lexical);
        Line("vector alone", r => r.Vector);
        Line("query embedding", r => r.Embed);
        var withGc = rows.Where(r => r.Gc0 + r.Gc1 + r.Gc2 > 0).ToList();
        var noGc = rows.Where(r => r.Gc0 + r.Gc1 + r.Gc2 == 0).ToList();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"searches during a GC: {withGc.Count} (gen1 {rows.Count(r => r.Gc1 > 0)}, gen2 {rows.Count(r => r.Gc2 > 0)}); p95 with GC {(withGc.Count > 0 ? P(withGc.Select(r => r.Total), 95) : 0):0.00}, without {P(noGc.Select(r => r.Total), 95):0.00}"));
        Console.WriteLine("slowest:");
        foreach (var r in rows.OrderByDescending(r => r.Total).Take(25))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {r.Total,7:0.00} bm25 {r.Lexical,6:0.00} ({r.Lexhits,3}) vec {r.Vector,6:0.00} emb {r.Embed,5:0.00} gc {r.Gc0}/{r.Gc1}/{r.Gc2}  {r.Query}"));
        }
    }
}
