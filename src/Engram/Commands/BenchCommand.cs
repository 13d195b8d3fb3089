using System.CommandLine;
using System.Text.Json;
using Engram.Cli.Bench;
using Engram.Cli.Output;
using Engram.Core.Common;

namespace Engram.Cli.Commands;

/// <summary><c>engram bench …</c>: measurements that need no server (retrieval quality on LoCoMo).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure Engram (retrieval quality).");
        bench.Subcommands.Add(Locomo());
        return bench;
    }

    private static Command Locomo()
    {
        var data = new Option<string>("--data") { Description = "A LoCoMo JSON file or a folder of them.", Required = true, HelpName = "PATH" };
        var output = new Option<string?>("--out") { Description = "Write one JSON line per question (question, evidence, top-50 dia_ids).", HelpName = "FILE" };
        var json = new Option<bool>("--json") { Description = "End with one JSON line: overall and per-category recall." };
        var command = new Command("locomo", "Recall@1/5/10/20 on LoCoMo conversations, each in a fresh temporary store with default settings.") { data, output, json };
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                var files = LocomoBenchmark.ResolveFiles(parse.GetValue(data)!);
                var options = Client.ConfiguredOptions.Load();
                var results = await new LocomoBenchmark(options.Search).RunAsync(files, line => Console.Error.WriteLine(line), ct);
                if (parse.GetValue(output) is { } path)
                {
                    await using var writer = new StreamWriter(path);
                    foreach (var r in results)
                    {
                        await writer.WriteLineAsync(JsonSerializer.Serialize(new { question = r.Question, category = r.Category, evidence = r.Evidence, ranked = r.Ranked }, EngramJson.Options));
                    }
                }
                var summary = LocomoBenchmark.Summarize(results);
                Console.WriteLine($"{"category",-10} {"questions",9} {"R@1",6} {"R@5",6} {"R@10",6} {"R@20",6}");
                foreach (var (category, (recall, count)) in summary.ByCategory)
                {
                    Console.WriteLine($"{category,-10} {count,9} {recall["r1"],6:F3} {recall["r5"],6:F3} {recall["r10"],6:F3} {recall["r20"],6:F3}");
                }
                var o = summary.Overall;
                Console.WriteLine($"{"overall",-10} {summary.Questions,9} {o["r1"],6:F3} {o["r5"],6:F3} {o["r10"],6:F3} {o["r20"],6:F3}");
                if (parse.GetValue(json))
                {
                    Console.WriteLine(JsonSerializer.Serialize(new
                    {
                        overall = new { r1 = o["r1"], r5 = o["r5"], r10 = o["r10"], r20 = o["r20"], questions = summary.Questions },
                        by_category = summary.ByCategory.ToDictionary(c => c.Key.ToString(System.Globalization.CultureInfo.InvariantCulture),
                            c => new { r1 = c.Value.Recall["r1"], r5 = c.Value.Recall["r5"], r10 = c.Value.Recall["r10"], r20 = c.Value.Recall["r20"], questions = c.Value.Questions }),
                    }));
                }
                return ExitCodes.Ok;
            }
            catch (ValidationException ex)
            {
                Console.Error.WriteLine("engram: " + ex.Message);
                return ExitCodes.UserError;
            }
            catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException or KeyNotFoundException or InvalidOperationException)
            {
                Console.Error.WriteLine("engram: cannot read the LoCoMo data: " + ex.Message);
                return ExitCodes.UserError;
            }
        });
        return command;
    }
}
