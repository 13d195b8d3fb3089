using System.Diagnostics;
using System.Globalization;
using Engram.Core.Indexing;
using Engram.Core.Indexing.Text;

namespace Engram.Benchmarks.Retrieval;

/// <summary>
/// <c>lexical-tail [--docs N] [--k N] [--queries N]</c>: the latency distribution of <see cref="Bm25Index"/> alone at
/// the candidate count the search service asks for (k=100 by default), pruned against exhaustive, over the e2e
/// corpus and queries, with the slowest queries listed. The index is built once and kept as a snapshot under
/// the data root, so a second run starts in seconds.
/// </summary>
public static class LexicalTail
{
    public static int Run(string[] args)
    {
        int docs = 1_000_000, k = 100, count = 1_000, seed = 42;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            var value = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--docs": docs = value; break;
                case "--k": k = value; break;
                case "--queries": count = value; break;
                case "--seed": seed = value; break;
                default:
                    Console.Error.WriteLine("usage: lexical-tail [--docs N] [--k N] [--queries N] [--seed N]");
                    return 1;
            }
        }
        var corpus = new CorpusGenerator(Vocabulary.Load(), seed);
        var path = Path.Combine("/var/tmp/engram-bench", Invariant($"lexical-tail-{docs}-seed{seed}.bm25"));
        Bm25Index index;
        var clock = Stopwatch.StartNew();
        if (File.Exists(path))
        {
            using var reader = new BinaryReader(File.OpenRead(path));
            index = Bm25Index.Read(reader, new TextAnalyzer(stem: true), 0.6f, 0.3f);
        }
        else
        {
            index = new Bm25Index(new TextAnalyzer(stem: true), 0.6f, 0.3f);
            for (var i = 0; i < docs; i++)
            {
                index.Add(i, corpus.Text(i));
            }
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using var writer = new BinaryWriter(File.Create(path));
            index.Write(writer);
        }
        Console.WriteLine(Invariant($"lexical tail: {index.Count:N0} documents, {index.TermCount:N0} terms, ready in {clock.Elapsed.TotalSeconds:0.0} s; k={k}, {count} queries, one thread"));
        var queries = QueryGenerator.Generate(corpus, docs, count, seed).Select(q => string.Join(' ', q)).ToArray();
        var results = new ScoredDoc[k];
        var variants = new (string Label, int PruneUpToK, int Parallel)[]
        {
            ("maxscore", int.MaxValue, 0), ("every posting", 0, 0), ("as shipped", index.MaxScoreMaxK, index.ParallelPostings),
        };
        foreach (var (label, pruneUpToK, parallel) in variants.Concat(variants))
        {
            (index.MaxScoreMaxK, index.ParallelPostings) = (pruneUpToK, parallel);
            var ms = new double[queries.Length];
            var cpu = new double[queries.Length];
            for (var q = 0; q < queries.Length; q++)
            {
                var c0 = ThreadCpuMs();
                var t = Stopwatch.GetTimestamp();
                index.Search(queries[q], results, default(AllDocs));
                ms[q] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
                cpu[q] = ThreadCpuMs() - c0;
            }
            var cpuSorted = cpu.Order().ToArray();
            var sorted = ms.Order().ToArray();
            double P(double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p / 100 * sorted.Length) - 1)];
            Console.WriteLine(Invariant($"{label,-11} mean {ms.Average(),6:0.00}  p50 {P(50),6:0.00}  p95 {P(95),6:0.00}  p99 {P(99),6:0.00}  max {sorted[^1],6:0.00} ms; thread CPU p50 {cpuSorted[cpuSorted.Length / 2],6:0.00} p95 {cpuSorted[(int)(cpuSorted.Length * 0.95)],6:0.00} mean {cpu.Average(),6:0.00}"));
        }
        return 0;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>CPU time this thread has used (CLOCK_THREAD_CPUTIME_ID): other load on the machine does not count in it.</summary>
    private static double ThreadCpuMs() => ClockGetTime(3, out var t) == 0 ? (t.Seconds * 1e3) + (t.Nanoseconds / 1e6) : 0;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
