using System.Diagnostics;
using System.Globalization;
using Engram.Benchmarks.Store;
using Engram.Core.Indexing;
using Engram.Core.Indexing.Text;
using Engram.Core.Storage.Sqlite;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// <c>lexical [--docs N] [--queries N] [--rounds N] [--no-fts]</c>: Engram's <see cref="Bm25Index"/> against
/// Lucene.Net's BM25 and SQLite FTS5's <c>bm25()</c> on the same corpus and queries, in one process:
/// single-threaded queries/s, latency percentiles and top-10 overlap. Rounds alternate between the contenders so that noise from other load on the
/// machine falls on all of them alike; the median round is reported.
/// </summary>
public static class LexicalBenchmark
{
    private const int TopK = 10;

    public static int Run(string[] args)
    {
        if (ParseArguments(args) is not { } settings)
        {
            Console.Error.WriteLine("usage: lexical [--docs N] [--queries N] [--rounds N] [--seed N] [--no-fts] [--data-root DIR]");
            return 1;
        }
        Console.WriteLine("Engram lexical benchmark: Bm25Index vs Lucene.Net BM25 and SQLite FTS5 bm25()");
        foreach (var line in MachineInfo.Describe(settings.DataRoot).Where(l => !l.StartsWith("data", StringComparison.Ordinal) && !l.StartsWith("sqlite", StringComparison.Ordinal)))
        {
            Console.WriteLine(line);
        }
        Console.WriteLine($"sqlite  : {SqliteConnection.Version}, FTS5 in a temporary file, synchronous=OFF, 512 MB page cache + mmap (the index is read from memory), optimized to one segment");

        var vocabulary = Vocabulary.Load();
        var corpus = new CorpusGenerator(vocabulary, settings.Seed);
        var texts = new List<string>(settings.Docs);
        for (var i = 0; i < settings.Docs; i++)
        {
            texts.Add(corpus.Text(i));
        }
        var queries = QueryGenerator.Generate(corpus, settings.Docs, settings.Queries, settings.Seed);
        var queryTexts = queries.Select(q => string.Join(' ', q)).ToArray();
        var matches = queries.Select(Fts5Index.MatchExpression).ToArray();
        Console.WriteLine(Invariant($"corpus  : {texts.Count:N0} memories, {texts.Average(t => t.Length):0} chars on average, vocabulary of {vocabulary.Count:N0} content words (Zipf-Mandelbrot), seed {settings.Seed}"));
        Console.WriteLine(Invariant($"queries : {queries.Count:N0}, {queries.Average(q => q.Length):0.0} words on average (2-6), e.g. \"{queryTexts[0]}\", \"{queryTexts[1]}\""));
        Console.WriteLine(Invariant($"timing  : one thread, top {TopK}, one warm-up pass, then {settings.Rounds} rounds of all queries per contender, alternating; median round"));

        using var folder = new BenchDataFolder(settings.DataRoot);
        Console.WriteLine("lucene  : Lucene.Net 4.8.0-beta00017, MMapDirectory in a temporary folder (read through the page cache), one segment, BM25Similarity(0.6, 0.3), Engram's analysis from Lucene parts");
        // Two views of one shipped index: as shipped (typo corrections on) and with corrections off,
        // which is the same BM25 that Lucene computes (Lucene has no typo expansion in this query).
        var shipped = new Bm25Index(new TextAnalyzer(stem: true), 0.6f, 0.3f);
        var contenders = new List<Contender>
        {
            BuildEngram("Engram Bm25Index (as shipped)", "stop words + light stem, k1 0.6 b 0.3", shipped, texts, queryTexts),
            EngramView("Engram Bm25Index (no typos)", "same index, typo corrections off", shipped, queryTexts, typoWeight: 0, pruning: true),
            EngramView("Engram Bm25Index (exhaustive)", "same index, no typos, no pruning", shipped, queryTexts, typoWeight: 0, pruning: false),
            BuildLucene("Lucene.Net BM25", "Engram's analysis, k1 0.6 b 0.3", Path.Combine(folder.Path, "lucene"), texts, queryTexts),
        };
        if (settings.Fts)
        {
            contenders.Add(BuildFts("SQLite FTS5 bm25()", "porter unicode61, k1 1.2 b 0.75", Path.Combine(folder.Path, "porter.db"), "porter unicode61", texts, matches));
            contenders.Add(BuildEngram("Engram Bm25Index (matched)", "no stop words, no stem, k1 1.2 b 0.75", new Bm25Index(new TextAnalyzer(removeStopWords: false, stem: false), 1.2f, 0.75f) { TypoWeight = 0 }, texts, queryTexts));
            contenders.Add(BuildFts("SQLite FTS5 bm25()", "unicode61, k1 1.2 b 0.75", Path.Combine(folder.Path, "plain.db"), "unicode61", texts, matches));
        }
        Console.WriteLine(Invariant($"typos   : the shipped index's typo table holds {shipped.TypoTableBytes / 1048576.0:0.0} MB for {shipped.TermCount:N0} terms"));
        Console.WriteLine();

        // Warm-up pass, which also records every contender's top 10 for the overlap.
        var tops = contenders.Select(c => Enumerable.Range(0, queries.Count).Select(q => TopOf(c, q)).ToArray()).ToArray();
        var ticks = contenders.Select(_ => new List<long>()).ToArray();
        var roundRates = contenders.Select(_ => new List<double>()).ToArray();
        Span<int> results = stackalloc int[TopK];
        for (var round = 0; round < settings.Rounds; round++)
        {
            for (var c = 0; c < contenders.Count; c++)
            {
                var started = Stopwatch.GetTimestamp();
                for (var q = 0; q < queries.Count; q++)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    contenders[c].Search(q, results);
                    ticks[c].Add(Stopwatch.GetTimestamp() - t0);
                }
                roundRates[c].Add(queries.Count / Stopwatch.GetElapsedTime(started).TotalSeconds);
                Console.Error.WriteLine(Invariant($"round {round + 1}: {contenders[c].Name} ({contenders[c].Analyzer}) {roundRates[c][^1]:N0} q/s"));
            }
        }

        var rates = roundRates.Select(r => r.Order().ElementAt(r.Count / 2)).ToArray();
        Console.WriteLine($"{"contender",-31}  {"analyzer",-39}  {"build s",7}  {"index MB",8}  {"queries/s",9}  {"p50 µs",7}  {"p99 µs",7}");
        Console.WriteLine(new string('-', 122));
        for (var c = 0; c < contenders.Count; c++)
        {
            var latency = new LatencyStats(ticks[c]);
            Console.WriteLine(Invariant($"{contenders[c].Name,-31}  {contenders[c].Analyzer,-39}  {contenders[c].BuildSeconds,7:0.00}  {contenders[c].IndexMegabytes,8:0.0}  {rates[c],9:N0}  {latency.Percentile(50) * 1000,7:0}  {latency.Percentile(99) * 1000,7:0}"));
        }
        Console.WriteLine();
        Console.WriteLine($"{"comparison",-52}  {"q/s ratio",9}  {"top-10 overlap",14}  {"queries compared",16}");
        Console.WriteLine(new string('-', 97));
        PrintComparison("Engram no typos vs Lucene.Net (same analysis, BM25)", rates[1] / rates[3], tops[1], tops[3]);
        PrintComparison("Engram exhaustive vs Lucene.Net", rates[2] / rates[3], tops[2], tops[3]);
        PrintComparison("Engram pruned vs exhaustive (both no typos)", rates[1] / rates[2], tops[1], tops[2]);
        PrintComparison("Engram as shipped vs Engram no typos", rates[0] / rates[1], tops[0], tops[1]);
        if (settings.Fts)
        {
            PrintComparison("as shipped vs FTS5 porter unicode61", rates[0] / rates[4], tops[0], tops[4]);
            PrintComparison("matched analyzer vs FTS5 unicode61", rates[5] / rates[6], tops[5], tops[6]);
            Console.WriteLine();
            Console.WriteLine(Invariant($"target  : Engram >= 3x FTS5 queries/s; as shipped {rates[0] / rates[4]:0.0}x, matched {rates[5] / rates[6]:0.0}x"));
        }
        foreach (var contender in contenders)
        {
            contender.Dispose();
        }
        return 0;
    }

    private static void PrintComparison(string label, double ratio, int[][] a, int[][] b)
    {
        var (overlap, compared) = Overlap(a, b);
        Console.WriteLine(Invariant($"{label,-52}  {ratio,8:0.0}x  {overlap,14:0.000}  {compared,16:N0}"));
    }

    /// <summary>
    /// Mean of |A∩B| / min(10, max(|A|, |B|)) over the queries where either side found something: that is
    /// |A∩B|/10 whenever a side fills its top 10, and does not punish a rare-word query that matches only three.
    /// </summary>
    private static (double Mean, int Compared) Overlap(int[][] a, int[][] b)
    {
        double sum = 0;
        var compared = 0;
        for (var q = 0; q < a.Length; q++)
        {
            var size = Math.Min(TopK, Math.Max(a[q].Length, b[q].Length));
            if (size == 0)
            {
                continue;
            }
            sum += (double)a[q].Intersect(b[q]).Count() / size;
            compared++;
        }
        return (compared == 0 ? 0 : sum / compared, compared);
    }

    private static int[] TopOf(Contender contender, int query)
    {
        Span<int> results = stackalloc int[TopK];
        var count = contender.Search(query, results);
        return results[..count].ToArray();
    }

    private static Contender BuildEngram(string name, string analyzer, Bm25Index index, List<string> texts, string[] queries)
    {
        var before = GC.GetTotalMemory(true);
        var started = Stopwatch.GetTimestamp();
        // Sequential document numbers, as MemoryIndex assigns them.
        for (var i = 0; i < texts.Count; i++)
        {
            index.Add(i, texts[i]);
        }
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var megabytes = (GC.GetTotalMemory(true) - before) / 1048576.0;
        Console.Error.WriteLine(Invariant($"built {name}: {index.Count:N0} documents, {index.TermCount:N0} terms in {seconds:0.00} s"));
        return new Contender(name, analyzer, seconds, megabytes, (q, results) =>
        {
            Span<ScoredDoc> top = stackalloc ScoredDoc[TopK];
            var count = index.Search(queries[q], top, default(AllDocs));
            for (var i = 0; i < count; i++)
            {
                results[i] = top[i].Doc;
            }
            return count;
        }, null);
    }

    private static Contender EngramView(string name, string analyzer, Bm25Index index, string[] queries, float typoWeight, bool pruning)
    {
        var (shippedTypos, shippedPruning) = (index.TypoWeight, index.DynamicPruning);
        return new Contender(name, analyzer, 0, 0, (q, results) =>
        {
            // One thread: the view sets the index's knobs for its own query and puts them back.
            (index.TypoWeight, index.DynamicPruning) = (typoWeight, pruning);
            Span<ScoredDoc> top = stackalloc ScoredDoc[TopK];
            var count = index.Search(queries[q], top, default(AllDocs));
            (index.TypoWeight, index.DynamicPruning) = (shippedTypos, shippedPruning);
            for (var i = 0; i < count; i++)
            {
                results[i] = top[i].Doc;
            }
            return count;
        }, null);
    }

    private static Contender BuildLucene(string name, string analyzer, string path, List<string> texts, string[] queries)
    {
        var started = Stopwatch.GetTimestamp();
        var lucene = LuceneIndex.Build(path, texts, 0.6f, 0.3f);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        Console.Error.WriteLine(Invariant($"built {name}: {texts.Count:N0} documents in {seconds:0.00} s"));
        return new Contender(name, analyzer, seconds, lucene.Bytes / 1048576.0, (q, results) => lucene.Search(queries[q], results), lucene);
    }

    private static Contender BuildFts(string name, string analyzer, string path, string tokenizer, List<string> texts, string[] matches)
    {
        var started = Stopwatch.GetTimestamp();
        var fts = Fts5Index.Create(path, tokenizer);
        fts.AddAll(texts);
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var megabytes = new FileInfo(path).Length / 1048576.0;
        Console.Error.WriteLine(Invariant($"built {name} ({tokenizer}): {texts.Count:N0} rows in {seconds:0.00} s"));
        return new Contender(name, analyzer, seconds, megabytes, (q, results) => fts.Search(matches[q], results), fts);
    }

    private static Settings? ParseArguments(string[] args)
    {
        var settings = new Settings();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--docs" when i + 1 < args.Length && int.TryParse(args[i + 1], out var docs) && docs > 0:
                    settings = settings with { Docs = docs };
                    i++;
                    break;
                case "--queries" when i + 1 < args.Length && int.TryParse(args[i + 1], out var queries) && queries > 0:
                    settings = settings with { Queries = queries };
                    i++;
                    break;
                case "--rounds" when i + 1 < args.Length && int.TryParse(args[i + 1], out var rounds) && rounds > 0:
                    settings = settings with { Rounds = rounds };
                    i++;
                    break;
                case "--seed" when i + 1 < args.Length && int.TryParse(args[i + 1], out var seed):
                    settings = settings with { Seed = seed };
                    i++;
                    break;
                case "--no-fts":
                    settings = settings with { Fts = false };
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

    private sealed record Settings
    {
        public int Docs { get; init; } = 100_000;

        public int Queries { get; init; } = 1_000;

        public int Rounds { get; init; } = 3;

        public int Seed { get; init; } = 42;

        public string DataRoot { get; init; } = BenchDataFolder.DefaultRoot;

        public bool Fts { get; init; } = true;
    }

    private delegate int SearchFunction(int query, Span<int> results);

    private sealed record Contender(string Name, string Analyzer, double BuildSeconds, double IndexMegabytes, SearchFunction Search, IDisposable? Resource) : IDisposable
    {
        public void Dispose() => Resource?.Dispose();
    }
}
