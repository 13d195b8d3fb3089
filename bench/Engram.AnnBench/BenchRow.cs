namespace Engram.AnnBench;

/// <summary>One measured configuration: an implementation at one ef.</summary>
internal sealed record BenchRow(string Impl, int Ef, double Recall, double QueriesPerSecond, double BuildInsertsPerSecond)
{
    public const double TargetRecall = 0.95;

    public static void PrintTable(IReadOnlyList<BenchRow> rows)
    {
        Console.WriteLine();
        Console.WriteLine($"| {"impl",-18} | {"ef",4} | {"recall@10",9} | {"queries/s",10} | {"build inserts/s",15} |");
        Console.WriteLine($"|{new string('-', 20)}|{new string('-', 6)}|{new string('-', 11)}|{new string('-', 12)}|{new string('-', 17)}|");
        foreach (var row in rows)
        {
            Console.WriteLine($"| {row.Impl,-18} | {row.Ef,4} | {row.Recall,9:F4} | {row.QueriesPerSecond,10:F0} | {row.BuildInsertsPerSecond,15:F0} |");
        }

        var baseline = FirstAtTarget(rows, "hnswlib-native") ?? FirstAtTarget(rows, "hnswlib-debian");
        Console.WriteLine();
        foreach (var impl in rows.Select(r => r.Impl).Distinct())
        {
            var best = FirstAtTarget(rows, impl);
            if (best is null)
            {
                Console.WriteLine($"{impl}: no ef reached recall@10 >= {TargetRecall}");
                continue;
            }
            var line = $"{impl}: smallest ef with recall@10 >= {TargetRecall} is {best.Ef} (recall {best.Recall:F4}, {best.QueriesPerSecond:F0} q/s)";
            if (baseline is not null && impl != baseline.Impl)
            {
                line += $"; vs {baseline.Impl} at ef {baseline.Ef}: queries/s x{best.QueriesPerSecond / baseline.QueriesPerSecond:F2}," +
                    $" build x{best.BuildInsertsPerSecond / baseline.BuildInsertsPerSecond:F2}";
            }
            Console.WriteLine(line);
        }
    }

    private static BenchRow? FirstAtTarget(IEnumerable<BenchRow> rows, string impl) =>
        rows.Where(r => r.Impl == impl && r.Recall >= TargetRecall).OrderBy(r => r.Ef).FirstOrDefault();
}
