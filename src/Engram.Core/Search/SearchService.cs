using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Embeddings;
using Engram.Core.Indexing;
using Engram.Core.Memories;
using Engram.Core.Security;
using Engram.Core.Storage;
using Engram.Core.Telemetry;

namespace Engram.Core.Search;

/// <summary>
/// Hybrid retrieval: BM25 and vector candidates (both filtered before their top-k cut), fused by one
/// scoring step with tunable weights for semantic, lexical, recency (half-life), importance and
/// entities (memories naming an entity the query names).
/// </summary>
public sealed class SearchService(
    IMemoryStore store, IndexFollower follower, IEmbeddingProvider embedder, WriteWatermark watermark,
    AccessTracker access, SearchOptions options, TimeProvider clock, Configuration.MemoryLimits? limits = null)
{
    private readonly MemoryValidator _validate = new(limits ?? new Configuration.MemoryLimits());

    private Func<Task>? _ready;

    /// <summary>A task every search awaits first (the engine's initial index build).</summary>
    public void WaitFor(Func<Task> ready) => _ready = ready;

    private const int MaxMetadataMatches = 200_000;

    /// <summary>How long after a failure searches answer from the indexes without asking the store again.</summary>
    private const long StoreAwayMs = 1_000;

    private long _storeAwayUntil;

    /// <summary>The write watermark when the store last failed: a write acknowledged since then says it is back.</summary>
    private long _storeAwayAtWrite;

    private void StoreAway()
    {
        Interlocked.Exchange(ref _storeAwayAtWrite, watermark.Last);
        Interlocked.Exchange(ref _storeAwayUntil, Environment.TickCount64 + StoreAwayMs);
    }

    /// <summary>
    /// Whether a search should skip the store: it failed under a second ago, no write has been acknowledged since
    /// (the follower may already have applied that write, so the index being current proves nothing), and the index
    /// has everything acknowledged before.
    /// </summary>
    private bool SkipStore() =>
        Copies is not null
        && Environment.TickCount64 < Interlocked.Read(ref _storeAwayUntil)
        && watermark.Last <= Interlocked.Read(ref _storeAwayAtWrite)
        && follower.Index.AppliedSeq >= watermark.Last;


    public SearchOptions Options => options;

    /// <summary>
    /// Copies of recently indexed memories: while the store is away, search ranks on its indexes as always and returns
    /// the hits found here (the result is marked stale) instead of failing. Null: search fails with the store.
    /// </summary>
    public MemoryCopies? Copies { get; init; }

    /// <summary>
    /// The users, agents, sessions and namespaces the caller's current memories name, with how many memories name
    /// each: one pass over the index's document table (interned scope numbers), not a store scan, so it stays in
    /// milliseconds at 100k memories. Confined like a search (a scoped key sees its own scope's values only).
    /// </summary>
    public async Task<IReadOnlyList<ScopeCount>> CountScopesAsync(Caller caller, CancellationToken ct = default)
    {
        var guard = ScopeGuard.Enter(caller, Role.Read, "list scopes");
        if (_ready is not null)
        {
            await _ready().WaitAsync(ct).ConfigureAwait(false);
        }
        await follower.CatchUpToAsync(watermark.Last, ct).ConfigureAwait(false);
        var filter = guard.Confine(new MemoryFilter { ExcludeSuperseded = true });
        var now = clock.GetUtcNow();
        return follower.Index.Read(index => index.Docs.CountScopes(new DocFilter(index.Docs, caller.Tenant, filter, now, null)));
    }

    /// <summary>
    /// This instance's searches as they finish (valid ones, answered or failed), on the search's own thread: an observer
    /// must be quick and never throw (the alert rules' p95 window, the search.performed webhook's bounded queue).
    /// </summary>
    public Action<SearchCompleted>? Completed { get; set; }

    public async Task<SearchResult> SearchAsync(Caller caller, SearchRequest request, CancellationToken ct = default)
    {
        var started = Stopwatch.GetTimestamp();
        var guard = ScopeGuard.Enter(caller, Role.Read, "search memories");
        var plan = Validate(request);
        // Counted once the request is valid: a refused request is the caller's error, not a search.
        var kind = plan.Semantic > 0 ? plan.Lexical > 0 ? EngramInstruments.Hybrid : EngramInstruments.Semantic : EngramInstruments.Lexical;
        var failed = false;
        SearchResult? result = null;
        try
        {
            result = await RunAsync(caller, request, guard, plan, started, ct).ConfigureAwait(false);
            return result;
        }
        catch (Exception ex) when (EngramInstruments.IsServerFailure(ex))
        {
            failed = true;
            throw;
        }
        finally
        {
            EngramInstruments.SearchDone(kind, started, failed);
            Completed?.Invoke(new SearchCompleted(caller, request, kind, result, Stopwatch.GetElapsedTime(started).TotalSeconds, failed));
        }
    }

    private async Task<SearchResult> RunAsync(Caller caller, SearchRequest request, ScopeGuard guard, Plan plan, long started, CancellationToken ct)
    {
        // The scope goes into the filter, which both indexes apply before their top-k cut.
        // A superseded memory is left out inside the index's filter, before the top-k cut, so k current ones come back.
        var filter = guard.Confine(_validate.Filter(ToFilter(request.Filters), "filters."), "filters.") with { ExcludeSuperseded = !request.IncludeSuperseded };

        if (_ready is not null)
        {
            await _ready().WaitAsync(ct).ConfigureAwait(false);
        }
        // Read-your-writes: everything this process acknowledged is in the index before we look. With the store away
        // the index is what it is: the search answers from it (stale) rather than fail.
        // Within a second of the store failing, searches do not ask it again: a database that drops packets would hold
        // each one for the connect timeout; one search a second finds out whether it is back. A write this process got
        // acknowledged since (the watermark moved) says it is back, and read-your-writes needs the store.
        var stale = SkipStore();
        try
        {
            if (!stale)
            {
                await follower.CatchUpToAsync(watermark.Last, ct).ConfigureAwait(false);
            }
        }
        catch (StoreException ex) when (Copies is not null && StoreFailure.IsUnavailable(ex))
        {
            StoreAway();
            stale = true;
        }

        HashSet<string>? metadataMatches = null;
        if (filter.Metadata is { Count: > 0 })
        {
            var ids = await store.ListIdsAsync(caller, filter, MaxMetadataMatches, ct).ConfigureAwait(false);
            metadataMatches = new HashSet<string>(ids, StringComparer.Ordinal);
        }

        float[]? queryVector = null;
        if (plan.Semantic > 0)
        {
            var embedStarted = Stopwatch.GetTimestamp();
            try
            {
                queryVector = await embedder.EmbedQueryAsync(plan.Query, ct).ConfigureAwait(false);
                EngramInstruments.EmbeddingDone(EngramInstruments.Query, embedStarted, failed: false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                EngramInstruments.EmbeddingDone(EngramInstruments.Query, embedStarted, failed: true);
                queryVector = null; // the embedder is down: rank on the other signals rather than fail
            }
        }

        var now = clock.GetUtcNow();
        var ranked = follower.Index.Read(index => Rank(index, caller.Tenant, caller.IsScoped, filter, metadataMatches, plan, queryVector, now));
        var rankedIds = ranked.Select(r => r.Id).ToList();
        IReadOnlyList<Memory> memories;
        if (stale)
        {
            memories = Copies!.GetMany(caller.Tenant, rankedIds);
        }
        else
        {
            try
            {
                memories = await store.GetManyAsync(caller, rankedIds, ct).ConfigureAwait(false);
                foreach (var memory in memories)
                {
                    Copies?.Put(caller.Tenant, memory); // the hot ones stay in the copies
                }
            }
            catch (StoreException ex) when (Copies is not null && StoreFailure.IsUnavailable(ex))
            {
                StoreAway();
                stale = true;
                memories = Copies.GetMany(caller.Tenant, rankedIds);
            }
        }
        var byId = memories.ToDictionary(m => m.Id, StringComparer.Ordinal);
        var hits = new List<SearchHit>(ranked.Count);
        foreach (var r in ranked)
        {
            // The guard again on what the store returned: an index lagging behind can never widen a result.
            // A superseded memory is no longer current: out unless asked for (extraction's SUPERSEDE). The index's filter
            // left out those it knew; this catches one superseded after the index last saw it.
            if (byId.TryGetValue(r.Id, out var memory) && guard.Covers(memory) && (request.IncludeSuperseded || memory.SupersededBy is null))
            {
                hits.Add(new SearchHit(memory, r.Score, request.Explain ? r.Explain : null));
            }
        }
        access.Record(caller.Tenant, hits.Select(h => h.Memory.Id));
        return new SearchResult(hits, Stopwatch.GetElapsedTime(started).TotalMilliseconds)
        {
            Stale = stale,
            Unavailable = stale ? ranked.Count(r => !byId.ContainsKey(r.Id)) : 0,
        };
    }

    private List<Ranked> Rank(MemoryIndex index, string tenant, bool scoped, MemoryFilter filter, HashSet<string>? metadataMatches, Plan plan, float[]? queryVector,
        DateTimeOffset now)
    {
        HashSet<int>? allowed = null;
        if (metadataMatches is not null)
        {
            allowed = [];
            foreach (var id in metadataMatches)
            {
                if (index.Docs.TryGetDoc(id, out var doc))
                {
                    allowed.Add(doc);
                }
            }
        }
        var docFilter = new DocFilter(index.Docs, tenant, filter, now, allowed);
        var candidates = Math.Max(options.MinCandidates, plan.K * options.CandidatesPerResult);
        var buffer = new ScoredDoc[candidates];
        var signals = new Dictionary<int, (float Bm25, float Cosine)>(candidates * 2);

        // On a large index the two searches take milliseconds each: run the vector search on another
        // core meanwhile. The caller holds the index's read lock until both are done, so no writer
        // can change what the other thread reads.
        var vectorBuffer = queryVector is null ? null : new ScoredDoc[candidates];
        Task<int>? vectorSearch = null;
        if (queryVector is not null && index.Docs.LiveCount >= options.ParallelSearchThreshold)
        {
            vectorSearch = Task.Run(() => index.SearchVectors(queryVector, vectorBuffer, docFilter));
        }
        if (plan.Lexical > 0 || queryVector is null)
        {
            var count = index.Lexical.Search(plan.Query, buffer, docFilter);
            for (var i = 0; i < count; i++)
            {
                signals[buffer[i].Doc] = (buffer[i].Score, 0f);
            }
        }
        if (queryVector is not null)
        {
            var count = vectorSearch?.GetAwaiter().GetResult() ?? index.SearchVectors(queryVector, vectorBuffer, docFilter);
            for (var i = 0; i < count; i++)
            {
                var doc = vectorBuffer![i].Doc;
                signals[doc] = (signals.TryGetValue(doc, out var s) ? s.Bm25 : 0f, vectorBuffer[i].Score);
            }
        }
        if (signals.Count == 0)
        {
            return [];
        }
        if (queryVector is not null)
        {
            // Lexical-only candidates still get their true cosine, so fusion compares like with like.
            foreach (var doc in signals.Where(s => s.Value.Cosine == 0f).Select(s => s.Key).ToList())
            {
                signals[doc] = (signals[doc].Bm25, index.Similarity(doc, queryVector));
            }
        }

        // BM25 has no absolute scale, so it is min-max normalised over the candidates (best 1, worst 0).
        // Cosine has one, but where "unrelated" and "a match" sit differs per model (GloVe means sit high,
        // MiniLM's near 0): it is mapped through the model's calibration (SimilarityCalibration) so one set
        // of weights and one noise floor serve every model. Measured against raw, min-max and RRF (bench/README.md).
        var (minBm25, maxBm25) = MinMax(signals.Values.Select(v => v.Bm25));
        var (minCosine, maxCosine) = MinMax(signals.Values.Select(v => v.Cosine));
        var calibration = SimilarityCalibration.For(embedder.ModelId);
        var noiseFloor = options.SemanticFloor ?? calibration.Noise;
        Dictionary<int, int>? lexicalRank = null, semanticRank = null;
        if (options.Fusion == FusionMethod.Rrf)
        {
            lexicalRank = RankOf(signals.Where(s => s.Value.Bm25 > 0).Select(s => (s.Key, s.Value.Bm25)));
            semanticRank = RankOf(signals.Select(s => (s.Key, s.Value.Cosine)));
        }
        // Entities the query names (whole words, among the names this tenant's memories carry). Found
        // even at weight 0, so explain shows the signal; with no names in the tenant it is one lookup.
        var named = index.Docs.EntitiesNamedIn(tenant, plan.Query);
        if (scoped && named.Length > 0)
        {
            // The dictionary holds the names of every scope of the tenant; a name only other scopes carry
            // would lower the share (and show in explain) and so tell a scoped caller it exists. Count
            // only names the candidates carry: they all passed the scope filter.
            named = [.. named.Where(key => signals.Keys.Any(doc => Array.IndexOf(index.Docs[doc].Entities, key) >= 0))];
        }
        var semanticWeight = queryVector is null ? 0 : plan.Semantic;
        var nowMs = now.ToUnixTimeMilliseconds();
        var ranked = new List<Ranked>(signals.Count);
        foreach (var (doc, (bm25, cosine)) in signals)
        {
            ref readonly var info = ref index.Docs[doc];
            var entity = named.Length == 0 ? 0 : (double)CountShared(info.Entities, named) / named.Length;
            // Noise: nothing of the query's words, none of its entities, and a similarity the model gives
            // unrelated text. Returning fewer than k beats filling k with such memories.
            if (queryVector is not null && options.DropNoise && bm25 <= 0 && entity <= 0 && cosine < noiseFloor)
            {
                continue;
            }
            double lexical, semantic;
            if (options.Fusion == FusionMethod.Rrf)
            {
                lexical = lexicalRank!.TryGetValue(doc, out var lr) ? (options.RrfK + 1.0) / (options.RrfK + lr) : 0;
                semantic = queryVector is null ? 0 : (options.RrfK + 1.0) / (options.RrfK + semanticRank![doc]);
            }
            else
            {
                lexical = Normalize(bm25, minBm25, maxBm25);
                semantic = queryVector is null ? 0 : options.SemanticScale switch
                {
                    SemanticScale.Raw => Math.Max(0, cosine),
                    SemanticScale.MinMax => Normalize(cosine, minCosine, maxCosine),
                    _ => calibration.Scale(cosine),
                };
            }
            var ageDays = Math.Max(0, nowMs - info.CreatedAtMs) / 86_400_000.0;
            var recency = Math.Pow(0.5, ageDays / plan.HalfLifeDays);
            var importance = info.Importance;
            var score = (semanticWeight * semantic) + (plan.Lexical * lexical) + (plan.Recency * recency) + (plan.Importance * importance) + (plan.Entity * entity);
            if (score < plan.MinScore)
            {
                continue;
            }
            ranked.Add(new Ranked(info.Id, score, new SearchExplanation(
                semantic, lexical, recency, importance, entity,
                semanticWeight * semantic, plan.Lexical * lexical, plan.Recency * recency, plan.Importance * importance, plan.Entity * entity,
                bm25, cosine)));
        }
        ranked.Sort(static (a, b) => b.Score != a.Score ? b.Score.CompareTo(a.Score) : string.CompareOrdinal(b.Id, a.Id));
        if (ranked.Count > plan.K)
        {
            ranked.RemoveRange(plan.K, ranked.Count - plan.K);
        }
        return ranked;
    }

    private static int CountShared(int[] docEntities, int[] named)
    {
        var shared = 0;
        foreach (var key in named)
        {
            shared += Array.IndexOf(docEntities, key) >= 0 ? 1 : 0;
        }
        return shared;
    }

    /// <summary>1-based ranks, highest value first.</summary>
    private static Dictionary<int, int> RankOf(IEnumerable<(int Doc, float Value)> values)
    {
        var ranks = new Dictionary<int, int>();
        var rank = 0;
        foreach (var (doc, _) in values.OrderByDescending(v => v.Value))
        {
            ranks[doc] = ++rank;
        }
        return ranks;
    }

    private static (float Min, float Max) MinMax(IEnumerable<float> values)
    {
        float min = float.MaxValue, max = float.MinValue;
        foreach (var v in values)
        {
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        return (min, max);
    }

    /// <summary>0..1 over the candidates; a signal that is equal everywhere says nothing and counts 1 only where it is positive.</summary>
    private static double Normalize(float value, float min, float max) =>
        max - min > 1e-9f ? (value - min) / (max - min) : value > 0 ? 1 : 0;

    private Plan Validate(SearchRequest request)
    {
        var query = request.Query?.Trim();
        if (string.IsNullOrEmpty(query))
        {
            throw new ValidationException("query", "query must be a non-empty string");
        }
        if (query.Length > 8_192)
        {
            throw new ValidationException("query", "query is longer than 8192 characters");
        }
        var k = request.K ?? options.TopK;
        if (k < 1 || k > options.MaxK)
        {
            throw new ValidationException("k", $"k must be between 1 and {options.MaxK} (got {k})");
        }
        var w = request.Weights;
        var plan = new Plan(query, k,
            Weight("weights.semantic", w?.Semantic, options.SemanticWeight),
            Weight("weights.lexical", w?.Lexical, options.LexicalWeight),
            Weight("weights.recency", w?.Recency, options.RecencyWeight),
            Weight("weights.importance", w?.Importance, options.ImportanceWeight),
            Weight("weights.entity", w?.Entity, options.EntityWeight),
            request.RecencyHalfLifeDays ?? options.RecencyHalfLifeDays,
            request.MinScore ?? options.MinScore ?? double.NegativeInfinity);
        if (!(plan.HalfLifeDays > 0) || double.IsInfinity(plan.HalfLifeDays))
        {
            throw new ValidationException("recency_half_life_days", "recency_half_life_days must be a positive number");
        }
        if (request.MinScore is { } min && !double.IsFinite(min))
        {
            throw new ValidationException("min_score", "min_score must be a finite number");
        }
        if (plan.Semantic + plan.Lexical + plan.Recency + plan.Importance + plan.Entity <= 0)
        {
            throw new ValidationException("weights", "at least one weight must be greater than 0");
        }
        return plan;
    }

    private static double Weight(string field, double? value, double fallback) => value switch
    {
        null => fallback,
        var v when double.IsFinite(v.Value) && v >= 0 && v <= 100 => v.Value,
        _ => throw new ValidationException(field, $"{field} must be a number between 0 and 100 (got {value})"),
    };

    /// <summary>The JSON filter object in the listing's terms (same names, same meaning).</summary>
    public static MemoryFilter ToFilter(SearchFilters? f)
    {
        if (f is null)
        {
            return MemoryFilter.None;
        }
        Dictionary<string, string>? metadata = null;
        if (f.Metadata is { Count: > 0 })
        {
            metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (key, value) in f.Metadata)
            {
                if (key.Length == 0 || key.Split('.').Any(string.IsNullOrEmpty))
                {
                    throw new ValidationException("filters.metadata", $"'{key}' is not a valid metadata path; use key or outer.inner");
                }
                metadata[key] = value.ValueKind switch
                {
                    JsonValueKind.String => value.GetString()!,
                    JsonValueKind.Number => value.GetDouble().ToString("R", CultureInfo.InvariantCulture),
                    JsonValueKind.True => "true",
                    JsonValueKind.False => "false",
                    _ => throw new ValidationException("filters.metadata", $"metadata filter '{key}' must be a string, number or boolean"),
                };
            }
        }
        return new MemoryFilter
        {
            UserId = f.UserId,
            AgentId = f.AgentId,
            SessionId = f.SessionId,
            Namespace = f.Namespace,
            Source = f.Source,
            Types = f.Type,
            Tiers = f.Tier,
            Tags = f.Tags,
            TagsMatch = f.TagsMatch switch
            {
                null or "all" => TagMatch.All,
                "any" => TagMatch.Any,
                var other => throw new ValidationException("filters.tags_match", $"tags_match must be 'all' or 'any' (got '{other}')"),
            },
            Entity = f.Entity is null || f.Entity.Trim().Length > 0
                ? f.Entity
                : throw new ValidationException("filters.entity", "filters.entity must name an entity"),
            Metadata = metadata,
            CreatedAfter = f.CreatedAfter,
            CreatedBefore = f.CreatedBefore,
            UpdatedAfter = f.UpdatedAfter,
            UpdatedBefore = f.UpdatedBefore,
        };
    }

    private readonly record struct Plan(string Query, int K, double Semantic, double Lexical, double Recency, double Importance, double Entity, double HalfLifeDays, double MinScore);

    private readonly record struct Ranked(string Id, double Score, SearchExplanation Explain);
}
