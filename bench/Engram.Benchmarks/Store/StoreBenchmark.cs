using System.Globalization;

namespace Engram.Benchmarks.Store;

/// <summary>
/// <c>store [--quick]</c>: insert throughput with durability on (through the service and over HTTP,
/// single and batched, one and many writers) and concurrent reads while writes go on, as a table.
/// </summary>
public static class StoreBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (ParseArguments(args) is not { } settings)
        {
            await Console.Error.WriteLineAsync("usage: store [--quick] [--data-root DIR]");
            return 1;
        }

        Console.WriteLine("Engram store benchmark");
        foreach (var line in MachineInfo.Describe(settings.DataRoot))
        {
            Console.WriteLine(line);
        }
        Console.WriteLine(Invariant($"timing  : {settings.Duration.TotalSeconds:0.##} s per insert scenario after {settings.WarmUp.TotalSeconds:0.##} s warm-up; seed {settings.Seed}"));
        Console.WriteLine();

        var inserts = new ThroughputTable();
        inserts.Add("(a) service  CreateAsync, 1 item", 1, await ServiceScenarios.SingleInsertsAsync(1, settings));
        inserts.Add("(a) service  CreateAsync, 1 item", 16, await ServiceScenarios.SingleInsertsAsync(16, settings));
        inserts.Add("(b) service  CreateBatchAsync, 100 items", 1, await ServiceScenarios.BatchInsertsAsync(100, 1, settings));
        inserts.Add("(b) service  CreateBatchAsync, 1000 items", 1, await ServiceScenarios.BatchInsertsAsync(1000, 1, settings));
        inserts.Add("(c) HTTP     POST /v1/memories", 1, await HttpScenarios.SingleInsertsAsync(1, settings));
        inserts.Add("(c) HTTP     POST /v1/memories", 16, await HttpScenarios.SingleInsertsAsync(16, settings));
        inserts.Add("(c) HTTP     POST /v1/memories/batch, 100 items", 1, await HttpScenarios.BatchInsertsAsync(100, 1, settings));
        inserts.Add("(c) HTTP     POST /v1/memories/batch, 1000 items", 1, await HttpScenarios.BatchInsertsAsync(1000, 1, settings));
        inserts.Print(Console.Out);
        Console.WriteLine();

        var (alone, underWrites) = await ReadsUnderWritesScenario.RunAsync(settings);
        Console.WriteLine(Invariant($"(d) {settings.Reads:N0} x GET /v1/memories/{{id}} over HTTP, {settings.Readers} concurrent readers, random ids out of 10,000"));
        ReadTable.Print(Console.Out, alone, underWrites);
        return 0;
    }

    private static StoreBenchmarkSettings? ParseArguments(string[] args)
    {
        var settings = StoreBenchmarkSettings.Full;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick":
                    settings = StoreBenchmarkSettings.Quick with { DataRoot = settings.DataRoot };
                    break;
                case "--data-root" when i + 1 < args.Length:
                    settings = settings with { DataRoot = Path.GetFullPath(args[++i]) };
                    break;
                default:
                    return null;
            }
        }
        return settings;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
