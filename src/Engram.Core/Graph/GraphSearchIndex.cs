using System.Text;
using Engram.Core.Indexing;
using Engram.Core.Indexing.Text;
using Engram.Core.Storage;

namespace Engram.Core.Graph;

/// <summary>
/// The lexical index of graph entities: one BM25 document per entity (name, type and the observations
/// valid when it was indexed), in memory, for every tenant. It follows the change log like the
/// memory index does: a search first reloads the entities named by <c>entity</c> entries after its
/// applied sequence number, so it always sees the caller's own writes. Validity also changes with
/// the clock and no change is logged when an observation's window opens or closes, so each entity
/// remembers its next boundary and is reloaded once the clock passes it.
/// </summary>
public sealed class GraphSearchIndex(IGraphStore store, TimeProvider clock)
{
    private const int ChangeBatch = 2_000;

    private readonly Bm25Index _bm25 = new(new TextAnalyzer());
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<(string Tenant, string Name), int> _docs = [];
    private readonly Dictionary<string, int> _tenantIds = new(StringComparer.Ordinal);
    private readonly PriorityQueue<(string Tenant, string Name), long> _boundaries = new();
    private (string Tenant, string Name)[] _keys = new (string, string)[64];
    private int[] _tenantOf = new int[64];
    private int _nextDoc;
    private long _appliedSeq;

    /// <summary>Entity names of <paramref name="tenant"/> matching <paramref name="query"/>, best first.</summary>
    public async Task<IReadOnlyList<(string Name, float Score)>> SearchAsync(string tenant, string query, int limit, CancellationToken ct = default)
    {
        await _gate.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await CatchUpAsync(ct).ConfigureAwait(false);
            await RefreshPassedBoundariesAsync(ct).ConfigureAwait(false);
            if (!_tenantIds.TryGetValue(tenant, out var tenantId))
            {
                return [];
            }
            var buffer = new ScoredDoc[Math.Max(1, limit)];
            var count = _bm25.Search(query, buffer, new TenantFilter(_tenantOf, tenantId));
            var hits = new List<(string, float)>(count);
            for (var i = 0; i < count; i++)
            {
                hits.Add((_keys[buffer[i].Doc].Name, buffer[i].Score));
            }
            return hits;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task CatchUpAsync(CancellationToken ct)
    {
        while (true)
        {
            var page = await store.ReadChangesAsync(_appliedSeq, ChangeBatch, GraphChangeKinds.Entity, ct).ConfigureAwait(false);
            var touched = page.Changes.Select(change => (change.Tenant, change.EntityId)).ToHashSet();
            if (touched.Count > 0)
            {
                await ReloadAsync(touched.ToList(), ct).ConfigureAwait(false);
            }
            _appliedSeq = Math.Max(_appliedSeq, page.ReadThrough);
            if (page.Changes.Count < ChangeBatch)
            {
                return;
            }
        }
    }

    private async Task RefreshPassedBoundariesAsync(CancellationToken ct)
    {
        var now = clock.GetUtcNow().ToUnixTimeMilliseconds();
        var due = new HashSet<(string, string)>();
        while (_boundaries.TryPeek(out var key, out var at) && at <= now)
        {
            _boundaries.Dequeue();
            due.Add(key);
        }
        if (due.Count > 0)
        {
            await ReloadAsync(due.ToList(), ct).ConfigureAwait(false);
        }
    }

    /// <summary>Drops the documents of <paramref name="keys"/> and indexes what the store holds for them now (fresh doc numbers).</summary>
    private async Task ReloadAsync(IReadOnlyList<(string Tenant, string Name)> keys, CancellationToken ct)
    {
        if (keys.Count == 0)
        {
            return;
        }
        foreach (var key in keys)
        {
            if (_docs.Remove(key, out var old))
            {
                _bm25.Remove(old);
            }
        }
        var now = clock.GetUtcNow();
        foreach (var entity in await store.GetEntitiesForIndexAsync(keys, ct).ConfigureAwait(false))
        {
            var text = new StringBuilder();
            // The name twice: a query naming an entity should rank it above entities that merely mention it.
            text.Append(entity.Name).Append(' ').Append(entity.Name).Append(' ').Append(entity.EntityType);
            long? next = null;
            foreach (var observation in entity.Observations)
            {
                if (observation.IsValidAt(now))
                {
                    text.Append('\n').Append(observation.Content);
                }
                foreach (var edge in (ReadOnlySpan<DateTimeOffset?>)[observation.ValidFrom, observation.ValidTo])
                {
                    if (edge is { } at && at > now && (next is null || at.ToUnixTimeMilliseconds() < next))
                    {
                        next = at.ToUnixTimeMilliseconds();
                    }
                }
            }
            var doc = _nextDoc++;
            EnsureCapacity(doc);
            if (!_tenantIds.TryGetValue(entity.Tenant, out var tenantId))
            {
                _tenantIds[entity.Tenant] = tenantId = _tenantIds.Count;
            }
            _keys[doc] = (entity.Tenant, entity.Name);
            _tenantOf[doc] = tenantId;
            _docs[(entity.Tenant, entity.Name)] = doc;
            _bm25.Add(doc, text.ToString());
            if (next is { } boundary)
            {
                _boundaries.Enqueue((entity.Tenant, entity.Name), boundary);
            }
        }
    }

    private void EnsureCapacity(int doc)
    {
        if (doc < _keys.Length)
        {
            return;
        }
        Array.Resize(ref _keys, _keys.Length * 2);
        Array.Resize(ref _tenantOf, _tenantOf.Length * 2);
    }

    private readonly struct TenantFilter(int[] tenantOf, int tenant) : IDocFilter
    {
        public bool Allows(int doc) => tenantOf[doc] == tenant;
    }
}
