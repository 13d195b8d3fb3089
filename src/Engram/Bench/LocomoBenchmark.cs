using System.Globalization;
using System.Text.Json;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Embeddings;
using Engram.Core.Memories;
using Engram.Core.Search;

namespace Engram.Cli.Bench;

/// <summary>
/// Retrieval quality on LoCoMo-shaped files (protocol: shared/data/locomo-dev/README.md; LongMemEval-S
/// converted to the same shape: shared/data/lme-dev/README.md). Each file goes into a fresh temporary store:
/// one memory per turn ("speaker: text" plus the image caption), created at the session's date,
/// metadata.dia_id, entities = the speaker and the proper nouns of the text other than the participants'
/// names (<see cref="ProperNouns"/>). Search's "now" is the question's date when the file has
/// <c>question_date</c>, else the last session's date, so recency ages memories as they were when asked.
/// Every question of categories 1-4 with evidence is searched; recall@k = |evidence ∩ top-k dia_ids| /
/// |evidence|; with <c>answer_sessions</c>, session any@5 / all@5 compare them with the sessions of the top 5.
/// </summary>
/// <param name="embedder">The embedder (the built-in one when null).</param>
public sealed class LocomoBenchmark(IEmbeddingProvider? embedder = null)
{
    public static readonly int[] Ks = [1, 5, 10, 20];
    private const int Ranked = 50;
    private const int SessionK = 5;

    public sealed record QuestionResult(string Question, int Category, string? Type, IReadOnlyList<string> Evidence,
        IReadOnlyList<string> AnswerSessions, IReadOnlyList<string> Ranked, IReadOnlyList<double>? Cosines = null, IReadOnlyList<double>? Bm25 = null)
    {
        /// <summary>"type" when the file names one (LongMemEval), else the category number.</summary>
        public string Group => Type ?? Category.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>Recall figures: r1, r5, r10, r20, returned (mean results of the top 50), and any5 / all5 over the questions that have answer sessions.</summary>
    public sealed record Figures(Dictionary<string, double> Recall, int Questions, int SessionQuestions);

    public sealed record Summary(Figures Overall, SortedDictionary<string, Figures> ByGroup);

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

    public async Task<List<QuestionResult>> RunAsync(IReadOnlyList<string> files, SearchOptions? options = null, Action<string>? progress = null,
        CancellationToken ct = default) =>
        (await RunAsync(files, [options ?? new SearchOptions()], progress, ct).ConfigureAwait(false))[0];

    /// <summary>
    /// Runs every variant on every file; returns one result list per variant. Variants that share the index
    /// settings (BM25 parameters, stemming, HNSW) share one store per file: only the search-time settings are
    /// swapped between them, which makes a sweep of weights cost one ingestion.
    /// </summary>
    public async Task<List<QuestionResult>[]> RunAsync(IReadOnlyList<string> files, IReadOnlyList<SearchOptions> variants, Action<string>? progress = null,
        CancellationToken ct = default)
    {
        var results = variants.Select(_ => new List<QuestionResult>()).ToArray();
        var groups = variants.Select((v, i) => (Variant: v, Index: i)).GroupBy(v => IndexKey(v.Variant)).ToList();
        foreach (var file in files)
        {
            using var document = JsonDocument.Parse(await File.ReadAllBytesAsync(file, ct).ConfigureAwait(false));
            var root = document.RootElement;
            var turns = ReadTurns(root);
            var questions = ReadQuestions(root);
            var lastSession = turns.Max(t => t.CreatedAt) ?? DateTimeOffset.UnixEpoch;
            var asked = root.TryGetProperty("question_date", out var qd) && ParseQuestionDate(qd.GetString()) is { } date ? date : lastSession;
            foreach (var group in groups)
            {
                var folder = Path.Combine(Path.GetTempPath(), "engram-locomo-" + Guid.NewGuid().ToString("N"));
                try
                {
                    var clock = new FixedClock(asked < lastSession ? lastSession : asked);
                    var live = Copy(group.First().Variant, new SearchOptions());
                    // The engine disposes its embedder; this one serves every file, so the engine gets a borrowed view.
                    await using var engine = EngramEngine.OpenSqlite(folder, search: live, embedder: embedder is null ? null : new Borrowed(embedder), clock: clock);
                    await engine.EnsureIndexedAsync().ConfigureAwait(false); // empty: every write below is embedded as it is indexed
                    var caller = Caller.Default("bench");
                    foreach (var chunk in turns.Chunk(1000))
                    {
                        await engine.Memories.CreateBatchAsync(caller, chunk, DuplicatePolicy.Allow, ct).ConfigureAwait(false);
                    }
                    await engine.Follower.CatchUpAsync(ct).ConfigureAwait(false);
                    while (engine.Index.PendingVectors > 0 && await engine.Follower.RetryPendingAsync(int.MaxValue, ct).ConfigureAwait(false) > 0)
                    {
                    }
                    if (engine.Index.PendingVectors > 0)
                    {
                        throw new InvalidOperationException($"{engine.Index.PendingVectors} memories have no vector: {engine.Follower.LastEmbeddingError}");
                    }
                    var idToDia = await DiaIdsAsync(engine, caller, ct).ConfigureAwait(false);
                    foreach (var (variant, index) in group)
                    {
                        Copy(variant, live);
                        foreach (var (question, category, type, evidence, sessions) in questions)
                        {
                            var found = await engine.Search.SearchAsync(caller, new SearchRequest { Query = question, K = Ranked, Explain = true }, ct).ConfigureAwait(false);
                            results[index].Add(new QuestionResult(question, category, type, evidence, sessions,
                                found.Results.Select(h => idToDia[h.Memory.Id]).ToList(),
                                found.Results.Select(h => Math.Round(h.Explain!.Cosine, 4)).ToList(),
                                found.Results.Select(h => Math.Round(h.Explain!.Bm25, 3)).ToList()));
                        }
                    }
                }
                finally
                {
                    TryDelete(folder);
                }
            }
            progress?.Invoke($"{Path.GetFileName(file)}: {turns.Count} turns, {questions.Count} questions");
        }
        return results;
    }

    private static async Task<Dictionary<string, string>> DiaIdsAsync(EngramEngine engine, Caller caller, CancellationToken ct)
    {
        var idToDia = new Dictionary<string, string>(StringComparer.Ordinal);
        var page = await engine.Memories.ListAsync(caller, MemoryFilter.None, 1000, null, ct).ConfigureAwait(false);
        while (true)
        {
            foreach (var m in page.Items)
            {
                idToDia[m.Id] = m.Metadata.GetProperty("dia_id").GetString()!;
            }
            if (page.NextCursor is null)
            {
                return idToDia;
            }
            page = await engine.Memories.ListAsync(caller, MemoryFilter.None, 1000, page.NextCursor, ct).ConfigureAwait(false);
        }
    }

    /// <summary>The settings that shape the indexes themselves; variants differing in these need their own store.</summary>
    private static string IndexKey(SearchOptions o) =>
        FormattableString.Invariant($"{o.Bm25K1}|{o.Bm25B}|{o.Stemming}|{o.HnswM}|{o.HnswEfConstruction}|{o.HnswEfSearch}|{o.VectorQuantization}");

    private static SearchOptions Copy(SearchOptions from, SearchOptions to)
    {
        foreach (var property in typeof(SearchOptions).GetProperties().Where(p => p.CanRead && p.CanWrite))
        {
            property.SetValue(to, property.GetValue(from));
        }
        return to;
    }

    public static Summary Summarize(IReadOnlyList<QuestionResult> results)
    {
        var byGroup = new SortedDictionary<string, Figures>(StringComparer.Ordinal);
        foreach (var group in results.GroupBy(r => r.Group))
        {
            byGroup[group.Key] = Measure(group.ToList());
        }
        return new Summary(Measure(results), byGroup);
    }

    /// <summary>Sessions ("D37") of the top-<paramref name="k"/> turns ("D37:4").</summary>
    public static HashSet<string> SessionsOf(IEnumerable<string> ranked, int k) =>
        ranked.Take(k).Select(d => d.Split(':')[0]).ToHashSet(StringComparer.Ordinal);

    private static Figures Measure(IReadOnlyList<QuestionResult> list)
    {
        var recall = Ks.ToDictionary(k => $"r{k}", k => list.Count == 0 ? 0 : list.Average(r =>
            (double)r.Evidence.Count(e => r.Ranked.Take(k).Contains(e, StringComparer.Ordinal)) / r.Evidence.Count));
        recall["returned"] = list.Count == 0 ? 0 : list.Average(r => r.Ranked.Count);
        var withSessions = list.Where(r => r.AnswerSessions.Count > 0).ToList();
        if (withSessions.Count > 0)
        {
            recall["any5"] = withSessions.Average(r => SessionsOf(r.Ranked, SessionK).Overlaps(r.AnswerSessions) ? 1.0 : 0.0);
            recall["all5"] = withSessions.Average(r => SessionsOf(r.Ranked, SessionK).IsSupersetOf(r.AnswerSessions) ? 1.0 : 0.0);
        }
        return new Figures(recall, list.Count, withSessions.Count);
    }

    internal static List<NewMemory> ReadTurns(JsonElement root)
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

    internal static List<(string Question, int Category, string? Type, List<string> Evidence, List<string> Sessions)> ReadQuestions(JsonElement root)
    {
        var questions = new List<(string, int, string?, List<string>, List<string>)>();
        // LongMemEval files carry the question's type and answer sessions at the top level (one question each).
        var fileType = root.TryGetProperty("question_type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var fileSessions = Strings(root, "answer_sessions");
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
            var type = q.TryGetProperty("question_type", out var qt) && qt.ValueKind == JsonValueKind.String ? qt.GetString() : fileType;
            var sessions = Strings(q, "answer_sessions") is { Count: > 0 } own ? own : fileSessions;
            questions.Add((text.GetString()!, category, type, evidence, sessions));
        }
        return questions;
    }

    private static List<string> Strings(JsonElement element, string name) =>
        element.TryGetProperty(name, out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().Where(e => e.ValueKind == JsonValueKind.String).Select(e => e.GetString()!).ToList()
            : [];

    /// <summary>LongMemEval's "2023/05/30 (Tue) 03:16" → that moment in UTC; null when unreadable.</summary>
    public static DateTimeOffset? ParseQuestionDate(string? text)
    {
        if (text is null)
        {
            return null;
        }
        var cleaned = System.Text.RegularExpressions.Regex.Replace(text, @"\s*\([A-Za-z]+\)\s*", " ").Trim();
        return DateTimeOffset.TryParseExact(cleaned, ["yyyy/MM/dd HH:mm", "yyyy/MM/dd"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value)
            ? value
            : ParseSessionDate(text);
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

    private sealed class Borrowed(IEmbeddingProvider inner) : IEmbeddingProvider
    {
        public string ModelId => inner.ModelId;

        public int Dimensions => inner.Dimensions;

        public ValueTask<float[]> EmbedAsync(string text, CancellationToken ct = default) => inner.EmbedAsync(text, ct);

        public ValueTask<float[]> EmbedQueryAsync(string text, CancellationToken ct = default) => inner.EmbedQueryAsync(text, ct);

        public ValueTask<float[][]> EmbedBatchAsync(IReadOnlyList<string> texts, CancellationToken ct = default) => inner.EmbedBatchAsync(texts, ct);
    }

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
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
