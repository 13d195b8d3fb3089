using System.CommandLine;
using System.Text.Json;
using Engram.Cli.Bench;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.Embeddings;

namespace Engram.Cli.Commands;

/// <summary><c>engram bench …</c>: measurements that need no server (retrieval quality on LoCoMo).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var bench = new Command("bench", "Measure Engram (retrieval quality).");
        bench.Subcommands.Add(Locomo());
        bench.Subcommands.Add(Chunks());
        return bench;
    }

    private static Command Locomo()
    {
        var data = new Option<string>("--data") { Description = "A LoCoMo-shaped JSON file or a folder of them (LoCoMo, or LongMemEval converted).", Required = true, HelpName = "PATH" };
        var output = new Option<string?>("--out") { Description = "Write one JSON line per question (question, evidence, top-50 dia_ids); with variants, of the first.", HelpName = "FILE" };
        var json = new Option<bool>("--json") { Description = "End with one JSON line per variant: overall and per-group recall." };
        var embedderName = new Option<string?>("--embedder") { Description = "builtin, transformer or hash (default: the configured one).", HelpName = "NAME" };
        var model = new Option<string?>("--model") { Description = "The transformer model: arctic-embed-xs or all-minilm-l6-v2.", HelpName = "NAME" };
        var set = new Option<string[]>("--set") { Description = "Override a search setting for every variant, e.g. --set SemanticWeight=0.5 (repeatable).", HelpName = "NAME=VALUE" };
        var variant = new Option<string[]>("--variant") { Description = "One run with these settings on top of --set, e.g. \"LexicalWeight=0.4,EntityWeight=0\" (repeatable; default one run).", HelpName = "SETTINGS" };
        var cache = new Option<string>("--cache") { Description = "Folder of the document-vector cache (model id + text hash).", HelpName = "DIR", DefaultValueFactory = _ => "/var/tmp/engram-bench/embcache" };
        var noCache = new Option<bool>("--no-cache") { Description = "Embed everything again, no vector cache." };
        var limit = new Option<int?>("--limit") { Description = "Only the first N files (in name order).", HelpName = "N" };
        var command = new Command("locomo", "Recall@1/5/10/20 (and session any@5 / all@5 where files name answer sessions) on LoCoMo-shaped files, each in a fresh temporary store.")
        {
            data, output, json, embedderName, model, set, variant, cache, noCache, limit,
        };
        command.SetAction(async (parse, ct) =>
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                var files = Files(parse.GetValue(data)!, parse.GetValue(limit));
                var options = Client.ConfiguredOptions.Load();
                var embeddings = Embeddings(options, parse.GetValue(embedderName), parse.GetValue(model));
                var baseline = SearchSettings.Apply(options.Search, parse.GetValue(set) ?? []);
                var specs = parse.GetValue(variant) is { Length: > 0 } given ? given : [""];
                var variants = specs.Select(v => SearchSettings.Apply(baseline, v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))).ToList();

                IEmbeddingProvider embedder = embeddings.CreateProvider();
                using var cached = parse.GetValue(noCache) ? null : new CachedEmbeddingProvider(embedder, parse.GetValue(cache)!);
                embedder = cached ?? embedder;
                Console.Error.WriteLine($"embedder {embedder.ModelId}" + (cached is null ? "" : $", {cached.Loaded} cached vectors"));
                var runs = await new LocomoBenchmark(embedder).RunAsync(files, variants, line => Console.Error.WriteLine(line), ct);
                if (parse.GetValue(output) is { } path)
                {
                    await using var writer = new StreamWriter(path);
                    foreach (var r in runs[0])
                    {
                        await writer.WriteLineAsync(JsonSerializer.Serialize(new { question = r.Question, category = r.Category, type = r.Type, evidence = r.Evidence, answer_sessions = r.AnswerSessions, ranked = r.Ranked, cosines = r.Cosines, bm25 = r.Bm25 }, EngramJson.Options));
                    }
                }
                for (var i = 0; i < runs.Length; i++)
                {
                    if (runs.Length > 1)
                    {
                        Console.WriteLine($"== variant {i + 1}: {(specs[i].Length == 0 ? "(base)" : specs[i])}");
                    }
                    var summary = LocomoBenchmark.Summarize(runs[i]);
                    PrintTable(summary);
                    if (parse.GetValue(json))
                    {
                        Console.WriteLine(JsonSerializer.Serialize(new
                        {
                            variant = specs[i],
                            overall = Json(summary.Overall),
                            by_group = summary.ByGroup.ToDictionary(g => g.Key, g => Json(g.Value)),
                        }));
                    }
                }
                Console.Error.WriteLine($"wall time {System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds:F1} s" + (cached is null ? "" : $", {cached.Embedded} texts embedded"));
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

    private static Command Chunks()
    {
        var data = new Option<string>("--data") { Description = "A LoCoMo-shaped JSON file or a folder of them.", Required = true, HelpName = "PATH" };
        var embedderName = new Option<string?>("--embedder") { Description = "builtin, transformer or hash (default: the configured one).", HelpName = "NAME" };
        var model = new Option<string?>("--model") { Description = "The transformer model: arctic-embed-xs or all-minilm-l6-v2.", HelpName = "NAME" };
        var size = new Option<int>("--chunk-chars") { Description = "Largest chunk, in characters (about 4 per token in English).", HelpName = "N", DefaultValueFactory = _ => 1000 };
        var overlap = new Option<int>("--overlap") { Description = "Characters two neighbouring chunks share.", HelpName = "N", DefaultValueFactory = _ => 150 };
        var cache = new Option<string>("--cache") { Description = "Folder of the document-vector cache (model id + text hash).", HelpName = "DIR", DefaultValueFactory = _ => "/var/tmp/engram-bench/embcache" };
        var limit = new Option<int?>("--limit") { Description = "Only the first N files (in name order).", HelpName = "N" };
        var command = new Command("chunks", "Semantic-only recall of whole turns against their best chunk (should long memories be embedded in chunks?).")
        {
            data, embedderName, model, size, overlap, cache, limit,
        };
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                if (parse.GetValue(size) < 100 || parse.GetValue(overlap) < 0 || parse.GetValue(overlap) >= parse.GetValue(size) / 2)
                {
                    throw new ValidationException("chunk-chars", "--chunk-chars must be at least 100 and --overlap between 0 and half of it");
                }
                var files = Files(parse.GetValue(data)!, parse.GetValue(limit));
                var embeddings = Embeddings(Client.ConfiguredOptions.Load(), parse.GetValue(embedderName), parse.GetValue(model));
                using var cached = new CachedEmbeddingProvider(embeddings.CreateProvider(), parse.GetValue(cache)!);
                Console.Error.WriteLine($"embedder {cached.ModelId}, {cached.Loaded} cached vectors");
                var study = new ChunkingStudy(cached, parse.GetValue(size), parse.GetValue(overlap));
                var rankings = await study.RunAsync(files, line => Console.Error.WriteLine(line), ct);
                Console.WriteLine($"{study.Turns} turns, {study.ChunkedTurns} longer than {parse.GetValue(size)} chars cut into {study.Chunks} chunks (overlap {parse.GetValue(overlap)})");
                foreach (var ranking in rankings)
                {
                    Console.WriteLine($"== semantic only: {ranking.Name}");
                    PrintTable(LocomoBenchmark.Summarize(ranking.Results));
                }
                Console.Error.WriteLine($"{cached.Embedded} texts embedded");
                return ExitCodes.Ok;
            }
            catch (ValidationException ex)
            {
                Console.Error.WriteLine("engram: " + ex.Message);
                return ExitCodes.UserError;
            }
            catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException or KeyNotFoundException or InvalidOperationException)
            {
                Console.Error.WriteLine("engram: cannot read the data: " + ex.Message);
                return ExitCodes.UserError;
            }
        });
        return command;
    }

    /// <summary>The JSON files of <paramref name="path"/>, only the first <paramref name="limit"/> when given.</summary>
    private static IReadOnlyList<string> Files(string path, int? limit)
    {
        var files = LocomoBenchmark.ResolveFiles(path);
        return limit is { } first ? files.Take(Math.Max(1, first)).ToList() : files;
    }

    /// <summary>The configured embedder settings with --embedder and --model applied, validated.</summary>
    private static EmbeddingSettings Embeddings(Server.EngramServerOptions options, string? provider, string? model)
    {
        var embeddings = options.Embeddings;
        embeddings.Provider = provider ?? embeddings.Provider;
        embeddings.Transformer.Model = model ?? embeddings.Transformer.Model;
        var errors = embeddings.Validate().ToList();
        return errors.Count == 0 ? embeddings : throw new ValidationException("embedder", string.Join("; ", errors));
    }

    private static void PrintTable(LocomoBenchmark.Summary summary)
    {
        Console.WriteLine($"{"group",-26} {"questions",9} {"R@1",6} {"R@5",6} {"R@10",6} {"R@20",6} {"ret",5} {"any@5",6} {"all@5",6}");
        foreach (var (group, figures) in summary.ByGroup)
        {
            Console.WriteLine(Row(group, figures));
        }
        Console.WriteLine(Row("overall", summary.Overall));
    }

    private static string Row(string group, LocomoBenchmark.Figures f)
    {
        var r = f.Recall;
        var sessions = r.TryGetValue("any5", out var any) ? $" {any,6:F3} {r["all5"],6:F3}" : "";
        return $"{group,-26} {f.Questions,9} {r["r1"],6:F3} {r["r5"],6:F3} {r["r10"],6:F3} {r["r20"],6:F3} {r["returned"],5:F1}{sessions}";
    }

    private static Dictionary<string, double> Json(LocomoBenchmark.Figures f) =>
        new(f.Recall) { ["questions"] = f.Questions };
}
