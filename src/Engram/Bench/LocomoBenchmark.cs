using System.Globalization;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;

namespace Engram.Cli.Bench;

/// <summary>
/// Retrieval quality on LoCoMo (protocol: shared/data/locomo-dev/README.md). Each conversation goes
/// into a fresh temporary store with the default settings: one memory per turn ("speaker: text" plus
/// the image caption), created at the session's date, metadata.dia_id, entities = the speaker and the
/// proper nouns of the text other than the participants' names (<see cref="ProperNouns"/>). Every
/// question of categories 1-4 with evidence is searched; recall@k = |evidence ∩ top-k dia_ids| / |evidence|.
/// </summary>
public sealed class LocomoBenchmark(SearchOptions? searchOptions = null)
{
    public static readonly int[] Ks = [1, 5, 10, 20];
    private const int Ranked = 50;

    public sealed record QuestionResult(string Question, int Category, IReadOnlyList<string> Evidence, IReadOnlyList<string> Ranked);

    public sealed record Summary(Dictionary<string, double> Overall, int Questions, Dictionary<int, (Dictionary<string, double> Recall, int Questions)> ByCategory);

    /// <summary>The JSON files of <paramref name="path"/> (a folder or one file).</summary>
    public static IReadOnlyList<string> ResolveFiles(string path)
    {
        if (Directory.Exists(path))
        {
            return Directory.GetFiles(path, "*.json").Order(StringComparer.Ordinal).ToList();
        }
        if (File.Exists(path))
        {
            return [path];
        }
        throw new ValidationException("data", $"'{path}' is neither a LoCoMo JSON file nor a folder of them");
    }

    public async Task<List<QuestionResult>> RunAsync(IReadOnlyList<string> files, Action<string>? progress = null, CancellationToken ct = default)
    {
        var results = new List<QuestionResult>();
        foreach (var file in files)
        {
            using var document = JsonDocument.Parse(await File.ReadAllBytesAsync(file, ct));
            var root = document.RootElement;
            var turns = ReadTurns(root);
            var questions = ReadQuestions(root);
            var folder = Path.Combine(Path.GetTempPath(), "engram-locomo-" + Guid.NewGuid().ToString("N"));
            try
            {
                await using var engine = EngramEngine.OpenSqlite(folder, search: searchOptions);
                var caller = Caller.Default("bench");
                foreach (var chunk in turns.Chunk(1000))
                {
                    await engine.Memories.CreateBatchAsync(caller, chunk, DuplicatePolicy.Allow, ct);
                }
                var idToDia = new Dictionary<string, string>(StringComparer.Ordinal);
                var page = await engine.Memories.ListAsync(caller, MemoryFilter.None, 1000, null, ct);
                while (true)
                {
                    foreach (var m in page.Items)
                    {
                        idToDia[m.Id] = m.Metadata.GetProperty("dia_id").GetString()!;
                    }
                    if (page.NextCursor is null)
                    {
                        break;
                    }
                    page = await engine.Memories.ListAsync(caller, MemoryFilter.None, 1000, page.NextCursor, ct);
                }
                foreach (var (question, category, evidence) in questions)
                {
                    var found = await engine.Search.SearchAsync(caller, new SearchRequest { Query = question, K = Ranked }, ct);
                    results.Add(new QuestionResult(question, category, evidence, found.Results.Select(h => idToDia[h.Memory.Id]).ToList()));
                }
                progress?.Invoke($"{Path.GetFileName(file)}: {turns.Count} turns, {questions.Count} questions");
            }
            finally
            {
                TryDelete(folder);
            }
        }
        return results;
    }

    public static Summary Summarize(IReadOnlyList<QuestionResult> results)
    {
        static Dictionary<string, double> Recall(IEnumerable<QuestionResult> rs)
        {
            var list = rs.ToList();
            return Ks.ToDictionary(k => $"r{k}", k => list.Count == 0 ? 0 : list.Average(r =>
                (double)r.Evidence.Count(e => r.Ranked.Take(k).Contains(e, StringComparer.Ordinal)) / r.Evidence.Count));
        }
        var byCategory = results.GroupBy(r => r.Category).OrderBy(g => g.Key)
            .ToDictionary(g => g.Key, g => (Recall(g), g.Count()));
        return new Summary(Recall(results), results.Count, byCategory);
    }

    private static List<NewMemory> ReadTurns(JsonElement root)
    {
        var turns = new List<(string Speaker, string Text, string? Caption, string Dia, DateTimeOffset? Date)>();
        // Conversations come either at the top level or under "conversation" (the original release's shape).
        var conversation = root.TryGetProperty("conversation", out var inner) && inner.ValueKind == JsonValueKind.Object ? inner : root;
        for (var session = 1; ; session++)
        {
            if (!conversation.TryGetProperty($"session_{session}", out var list) || list.ValueKind != JsonValueKind.Array)
            {
                if (session > 100)
                {
                    break;
                }
                continue;
            }
            var date = conversation.TryGetProperty($"session_{session}_date_time", out var d) ? ParseSessionDate(d.GetString()) : null;
            foreach (var turn in list.EnumerateArray())
            {
                var caption = turn.TryGetProperty("blip_caption", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
                turns.Add((turn.GetProperty("speaker").GetString() ?? "", turn.GetProperty("text").GetString() ?? "", caption,
                    turn.GetProperty("dia_id").GetString()!, date));
            }
        }

        // Entities: who speaks, and the proper nouns of what they say (ProperNouns has the rule) except
        // the participants' own names: in a two-person chat those are nearly always forms of address
        // ("Thanks, Caroline!"), which would link a turn to the person it is said to, not by.
        var properNouns = new ProperNouns(turns.Select(t => t.Text));
        var participants = turns.Select(t => t.Speaker).ToHashSet(StringComparer.OrdinalIgnoreCase);
        return turns.Select(t => new NewMemory
        {
            Content = $"{t.Speaker}: {t.Text}" + (t.Caption is null ? "" : " [shares " + t.Caption + "]"),
            CreatedAt = t.Date,
            Entities = ((string[])[t.Speaker, .. properNouns.Find(t.Text).Where(n => !participants.Contains(n))]).Where(n => n.Length > 0).Take(64).ToList(),
            Metadata = JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["dia_id"] = t.Dia }),
        }).ToList();
    }

    private static List<(string Question, int Category, List<string> Evidence)> ReadQuestions(JsonElement root)
    {
        var questions = new List<(string, int, List<string>)>();
        if (!root.TryGetProperty("qa", out var qa) || qa.ValueKind != JsonValueKind.Array)
        {
            return questions;
        }
        foreach (var q in qa.EnumerateArray())
        {
            var category = q.TryGetProperty("category", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetInt32() : 0;
            if (category is < 1 or > 4 || !q.TryGetProperty("evidence", out var ev) || ev.ValueKind != JsonValueKind.Array)
            {
                continue;
            }
            // Some entries pack several ids into one string ("D8:6; D9:17").
            var evidence = ev.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String)
                .SelectMany(e => e.GetString()!.Split([';', ','], StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                .Distinct(StringComparer.Ordinal).ToList();
            if (evidence.Count == 0 || !q.TryGetProperty("question", out var text))
            {
                continue;
            }
            questions.Add((text.GetString()!, category, evidence));
        }
        return questions;
    }

    /// <summary>"1:56 pm on 8 May, 2023" → that moment in UTC; null when unreadable.</summary>
    public static DateTimeOffset? ParseSessionDate(string? text)
    {
        if (text is null)
        {
            return null;
        }
        string[] formats = ["h:mm tt 'on' d MMMM, yyyy", "h:mm tt 'on' d MMM, yyyy", "h:mm tt 'on' dd MMMM, yyyy"];
        return DateTimeOffset.TryParseExact(text.Trim(), formats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value)
            ? value
            : null;
    }

    private static void TryDelete(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
