using System.Collections.Concurrent;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Embeddings;
using Engram.Core.Indexing;
using Engram.Core.Indexing.Vector;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

/// <summary>
/// Churn (memories created and deleted, as TTLs expire them) through the real engine: the background compaction keeps
/// the HNSW graph and BM25's postings bounded, search stays right during and after it, and the result snapshots and
/// rebuilds like any index.
/// </summary>
public sealed class IndexCompactionTests : IDisposable
{
    private const double Share = 0.2;
    private const int Minimum = 50;
    private static readonly Caller Me = Caller.Default("test");
    private static readonly string[] Topics = ["budget planning", "hiking trips", "database backups", "garden tomatoes", "jazz records", "tax forms"];
    private readonly TempDirectory _dir = new();
    private int _written;

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Churn_keeps_nodes_and_postings_bounded_and_search_returns_only_live_memories()
    {
        await using var engine = EngramEngine.OpenSqlite(_dir.Path, snapshots: true);
        await engine.EnsureIndexedAsync();
        var live = new Queue<string>(await CreateAsync(engine, 300));
        var deleted = new HashSet<string>(StringComparer.Ordinal);
        var maxNodes = 0;
        var maxLexical = 0;
        for (var cycle = 0; cycle < 20; cycle++)
        {
            foreach (var id in await CreateAsync(engine, 60))
            {
                live.Enqueue(id);
            }
            for (var i = 0; i < 60; i++)
            {
                var old = live.Dequeue();
                await engine.Memories.DeleteAsync(Me, old);
                deleted.Add(old);
            }
            await SettleAsync(engine);
            engine.Index.Compact(Share, Minimum);
            var tombstones = engine.Index.Tombstones;
            maxNodes = Math.Max(maxNodes, tombstones.VectorNodes);
            maxLexical = Math.Max(maxLexical, tombstones.Lexical);
            (await SearchIdsAsync(engine, Topics[cycle % Topics.Length])).Should().NotIntersectWith(deleted);
        }

        // 1,500 memories passed through a live set of 300: without compaction the graph would hold 1,500 nodes.
        engine.Index.Count.Should().Be(300);
        maxNodes.Should().BeLessThanOrEqualTo(300 + 60 + Minimum + (int)(Share * 450), "tombstones are reclaimed past 20 % of the nodes");
        maxLexical.Should().BeLessThan(200, "dead postings are dropped past 20 %");
        engine.Index.Tombstones.Documents.Should().BeLessThan(300 + 60, "documents are renumbered once the retired numbers outnumber the live ones");
        engine.Index.Renumberings.Should().BeGreaterThan(0);
        engine.Index.Read(index => index.Docs.NextDoc).Should().BeLessThan(2 * (300 + 60));
        AssertIndexesHoldOnlyLive(engine, live);
        await AssertSemanticMatchesExactAsync(engine, live);
    }

    [Fact]
    public async Task Searches_and_writes_during_a_compaction_never_fail_nor_return_deleted_memories()
    {
        await using var engine = EngramEngine.OpenSqlite(_dir.Path, snapshots: true);
        await engine.EnsureIndexedAsync();
        var ids = await CreateAsync(engine, 1_500);
        var deleted = new ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
        foreach (var id in ids.Where((_, i) => i / Topics.Length % 2 == 0)) // half of every topic
        {
            await engine.Memories.DeleteAsync(Me, id);
            deleted[id] = 0;
        }
        await SettleAsync(engine);
        engine.Index.Tombstones.Vectors.Should().Be(750);

        using var stop = new CancellationTokenSource();
        var failures = new ConcurrentQueue<string>();
        var searches = 0;
        var searchers = Enumerable.Range(0, 2).Select(s => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    // Only memories deleted before the search started may not appear.
                    var gone = deleted.Keys.ToHashSet(StringComparer.Ordinal);
                    var topic = Topics[(searches + s) % Topics.Length];
                    var found = await SearchIdsAsync(engine, topic);
                    if (found.Count == 0 || found.Any(gone.Contains))
                    {
                        failures.Enqueue($"search for '{topic}' returned {found.Count} results, deleted ones among them: {found.Any(gone.Contains)}; {engine.Index.Tombstones}, {engine.Index.Count} live");
                    }
                }
                catch (Exception ex)
                {
                    failures.Enqueue(ex.ToString());
                }
                Interlocked.Increment(ref searches);
            }
        })).ToArray();
        var writer = Task.Run(async () =>
        {
            var more = await CreateAsync(engine, 200);
            foreach (var id in more.Take(50).Concat(ids.Where((_, i) => i / Topics.Length % 2 == 1).Take(50)))
            {
                await engine.Memories.DeleteAsync(Me, id);
                deleted[id] = 0;
            }
            await SettleAsync(engine);
            return more;
        });

        var done = await Task.Run(() => engine.Index.Compact(Share, Minimum));
        var added = await writer;
        await SettleAsync(engine);
        engine.Index.Compact(Share, Minimum); // whatever the writer removed after the first one's swap
        await stop.CancelAsync();
        await Task.WhenAll(searchers);

        failures.Should().BeEmpty();
        searches.Should().BeGreaterThan(0);
        done.Vectors.Should().BeGreaterThanOrEqualTo(750);
        var live = ids.Concat(added).Where(id => !deleted.ContainsKey(id)).ToHashSet(StringComparer.Ordinal);
        engine.Index.Count.Should().Be(1_500 - 750 + 200 - 100);
        AssertIndexesHoldOnlyLive(engine, live);
        await AssertSemanticMatchesExactAsync(engine, live);
    }

    [Fact]
    public async Task A_snapshot_written_after_a_compaction_loads_and_answers_the_same_and_reindex_starts_clean()
    {
        List<string> before;
        await using (var engine = EngramEngine.OpenSqlite(_dir.Path, snapshots: true))
        {
            await engine.EnsureIndexedAsync();
            var ids = await CreateAsync(engine, 400);
            foreach (var id in ids.Take(200))
            {
                await engine.Memories.DeleteAsync(Me, id);
            }
            await SettleAsync(engine);
            var done = engine.Index.Compact(Share, Minimum);
            done.Vectors.Should().Be(200);
            done.Postings.Should().BeGreaterThan(0);
            done.Documents.Should().Be(200, "as many retired numbers as live ones: renumbered");
            engine.Index.Tombstones.Should().Be(new IndexTombstones(0, 200, 0, 0));
            (await engine.SaveSnapshotAsync(force: true)).Should().BeTrue();
            before = await SearchIdsAsync(engine, "hiking trips");
        }

        await using (var engine = EngramEngine.OpenSqlite(_dir.Path, snapshots: true))
        {
            var report = await engine.EnsureIndexedAsync();
            report.Source.Should().Be("snapshot", report.Reason);
            engine.Index.Count.Should().Be(200);
            (await SearchIdsAsync(engine, "hiking trips")).Should().Equal(before);

            // engram maintenance reindex: a rebuild from the store starts with no removed entries at all.
            await engine.RebuildAsync();
            engine.Index.Tombstones.Should().Be(new IndexTombstones(0, 200, 0, 0));
            (await SearchIdsAsync(engine, "hiking trips")).Should().BeEquivalentTo(before);
        }
    }

    [Fact]
    public void Renumbering_keeps_staged_and_pending_vectors_and_refuses_a_vector_for_an_old_number()
    {
        var embedder = new HashEmbeddingProvider(32);
        var index = new MemoryIndex(d => new HnswIndex(d, HnswOptions.Default with { ExactSearchThreshold = 0 }), embedder.ModelId);
        static Memory MemoryOf(int i) => new()
        {
            Id = $"01J00000000000000000{i:D6}",
            Content = $"memory {i} about topic{i % 7}",
            ContentHash = "h",
            Type = "fact",
            Tier = MemoryTier.LongTerm,
            Importance = 0.5,
            Tags = [],
            Entities = [],
            Metadata = System.Text.Json.JsonDocument.Parse("{}").RootElement,
            CreatedAt = DateTimeOffset.UnixEpoch,
            UpdatedAt = DateTimeOffset.UnixEpoch,
            Version = 1,
        };
        for (var i = 0; i < 200; i++)
        {
            index.Upsert("default", MemoryOf(i), embedder.Embed(MemoryOf(i).Content));
        }
        while (index.DrainStaged(1_000) > 0)
        {
        }
        for (var i = 200; i < 240; i++)
        {
            index.Upsert("default", MemoryOf(i), i < 220 ? embedder.Embed(MemoryOf(i).Content) : null); // 20 staged, 20 pending
        }
        for (var i = 0; i < 150; i++)
        {
            index.Remove(MemoryOf(i).Id);
        }
        var pending = index.PendingSnapshot(100, out var epoch);
        pending.Should().HaveCount(20);

        var done = index.Compact(Share, 10);
        done.Vectors.Should().Be(150);
        done.Documents.Should().Be(150);
        index.Renumberings.Should().Be(1);
        index.Read(i => i.Docs.NextDoc).Should().Be(90);
        index.StagedVectors.Should().Be(20);
        index.PendingVectors.Should().Be(20);
        index.Tombstones.Should().Be(new IndexTombstones(0, 50, 0, 0));

        // A vector computed for a number handed out before the renumbering names another document now: refused.
        index.AttachVector(pending[0].Doc, embedder.Embed("stale"), epoch).Should().BeFalse();
        index.PendingVectors.Should().Be(20);
        foreach (var (id, doc) in index.PendingSnapshot(100, out var current))
        {
            index.AttachVector(doc, embedder.Embed(MemoryOf(int.Parse(id[^6..], System.Globalization.CultureInfo.InvariantCulture)).Content), current).Should().BeTrue();
        }
        while (index.DrainStaged(1_000) > 0)
        {
        }
        index.VectorCount.Should().Be(90);

        // Every number now names the right memory in every index.
        index.Read(i =>
        {
            var results = new ScoredDoc[200];
            foreach (var n in new[] { 150, 180, 205, 225, 239 })
            {
                var memory = MemoryOf(n);
                var query = embedder.Embed(memory.Content);
                var count = i.SearchVectors(query, results, new AllDocs());
                count.Should().Be(90);
                i.Docs.TryGetDoc(memory.Id, out var doc).Should().BeTrue();
                i.Similarity(doc, query).Should().BeApproximately(1f, 1e-4f, "the number names this memory's vector");
                results[0].Score.Should().BeApproximately(1f, 1e-4f); // (a 32-dimension hash may give another memory the same vector)
                var lexical = i.Lexical.Search($"topic{n % 7}", results, new AllDocs());
                results.Take(lexical).Select(r => int.Parse(i.Docs[r.Doc].Id[^6..], System.Globalization.CultureInfo.InvariantCulture))
                    .Should().OnlyContain(m => m >= 150 && m % 7 == n % 7).And.HaveCount(Enumerable.Range(150, 90).Count(m => m % 7 == n % 7));
            }
            return 0;
        });

        // And new documents continue from the dense numbers.
        index.Upsert("default", MemoryOf(999), embedder.Embed("new"));
        index.Read(i => i.Docs.TryGetDoc(MemoryOf(999).Id, out var doc) ? doc : -1).Should().Be(90);
    }

    private async Task<List<string>> CreateAsync(EngramEngine engine, int count)
    {
        var items = Enumerable.Range(_written, count).Select(i => (NewMemory?)new NewMemory
        {
            Content = $"note {i}: the team discussed {Topics[i % Topics.Length]} on day {i} with person {i % 17}",
        }).ToList();
        _written += count;
        var ids = new List<string>();
        foreach (var chunk in items.Chunk(500))
        {
            ids.AddRange((await engine.Memories.CreateBatchAsync(Me, chunk)).Select(r => r.Id!));
        }
        await SettleAsync(engine); // indexed (and in the graph) before any is deleted
        return ids;
    }

    /// <summary>Applies the change log and moves every staged vector into the graph (what the server's loops do).</summary>
    private static async Task SettleAsync(EngramEngine engine)
    {
        await engine.Follower.CatchUpAsync();
        while (engine.Index.DrainStaged(1_000) > 0)
        {
        }
    }

    private static async Task<List<string>> SearchIdsAsync(EngramEngine engine, string query) =>
        (await engine.Search.SearchAsync(Me, new SearchRequest { Query = query, K = 20 })).Results.Select(r => r.Memory.Id).ToList();

    /// <summary>Every document either index returns for an unfiltered search is one of <paramref name="live"/>.</summary>
    private static void AssertIndexesHoldOnlyLive(EngramEngine engine, IEnumerable<string> live)
    {
        var expected = live.ToHashSet(StringComparer.Ordinal);
        engine.Index.Read(index =>
        {
            var results = new ScoredDoc[expected.Count + 50];
            foreach (var topic in Topics)
            {
                var lexical = index.Lexical.Search(topic, results, new AllDocs());
                results.Take(lexical).Select(r => index.Docs[r.Doc].Id).Should().OnlyContain(id => expected.Contains(id));
            }
            var vectors = index.SearchVectors(new float[index.Vectors!.Dimensions].Select((_, d) => d == 0 ? 1f : 0f).ToArray(), results, new AllDocs());
            vectors.Should().Be(expected.Count, "every live memory has its vector");
            results.Take(vectors).Select(r => index.Docs[r.Doc].Id).Should().OnlyContain(id => expected.Contains(id));
            return 0;
        });
    }

    /// <summary>The graph's top 10 for each topic against an exact scan of the live documents' vectors.</summary>
    private static async Task AssertSemanticMatchesExactAsync(EngramEngine engine, IEnumerable<string> live)
    {
        foreach (var topic in Topics)
        {
            var query = await engine.Embedder.EmbedQueryAsync(topic);
            engine.Index.Read(index =>
            {
                var exact = live.Select(id => index.Docs.TryGetDoc(id, out var doc) ? doc : -1).Should().NotContain(-1).And.Subject
                    .Select(doc => (Doc: doc, Score: index.Similarity(doc, query))).OrderByDescending(d => d.Score).Take(10).ToList();
                var results = new ScoredDoc[10];
                var count = index.SearchVectors(query, results, new AllDocs());
                count.Should().Be(10);
                results.Select(r => MathF.Round(r.Score, 4)).Should().Equal(exact.Select(e => MathF.Round(e.Score, 4)));
                return 0;
            });
        }
    }
}
