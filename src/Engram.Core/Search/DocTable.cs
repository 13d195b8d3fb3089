using Engram.Core.Memories;

namespace Engram.Core.Search;

/// <summary>
/// The search layer's view of every indexed memory version: a dense document number per version,
/// with the fields filters need kept in arrays (scope values interned to ints), so a filter is a
/// handful of integer compares per candidate instead of a store round trip.
/// Not synchronised: <see cref="MemoryIndex"/> guards it.
/// </summary>
public sealed partial class DocTable
{
    public const int None = -1;

    private readonly Dictionary<string, int> _symbols = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _docById = new(StringComparer.Ordinal);
    private readonly EntityDictionary _entityNames = new();
    private DocInfo[] _docs = new DocInfo[1024];

    public int NextDoc { get; private set; }

    public int LiveCount => _docById.Count;

    public ref readonly DocInfo this[int doc] => ref _docs[doc];

    public bool TryGetDoc(string memoryId, out int doc) => _docById.TryGetValue(memoryId, out doc);

    /// <summary>The symbol number of <paramref name="value"/>, or <see cref="None"/> for null; -2 when never seen (matches nothing).</summary>
    public int Lookup(string? value) => value is null ? None : _symbols.TryGetValue(value, out var id) ? id : -2;

    /// <summary>The <paramref name="top"/> tenants with the most live memories (one pass over the table, no store read).</summary>
    public IReadOnlyList<(string Tenant, int Memories)> LargestTenants(int top)
    {
        var counts = new Dictionary<int, int>();
        for (var doc = 0; doc < NextDoc; doc++)
        {
            if (_docs[doc].Live)
            {
                counts[_docs[doc].Tenant] = counts.GetValueOrDefault(_docs[doc].Tenant) + 1;
            }
        }
        var names = _symbols.Where(s => counts.ContainsKey(s.Value)).ToDictionary(s => s.Value, s => s.Key);
        return [.. counts.OrderByDescending(c => c.Value).Take(top).Select(c => (names.GetValueOrDefault(c.Key, "?"), c.Value))];
    }

    /// <summary>Per scope field and value, how many documents <paramref name="filter"/> allows name it (one pass over the table).</summary>
    public IReadOnlyList<ScopeCount> CountScopes(DocFilter filter)
    {
        var counts = new Dictionary<(int Field, int Symbol), int>();
        for (var doc = 0; doc < NextDoc; doc++)
        {
            if (!filter.Allows(doc))
            {
                continue;
            }
            ref readonly var d = ref _docs[doc];
            Count(counts, 0, d.User);
            Count(counts, 1, d.Agent);
            Count(counts, 2, d.Session);
            Count(counts, 3, d.Namespace);
        }
        if (counts.Count == 0)
        {
            return [];
        }
        var wanted = counts.Keys.Select(k => k.Symbol).ToHashSet();
        var names = new Dictionary<int, string>(wanted.Count);
        foreach (var (value, id) in _symbols)
        {
            if (wanted.Contains(id))
            {
                names[id] = value;
            }
        }
        return [.. counts.Select(c => new ScopeCount(ScopeCount.Fields[c.Key.Field], names[c.Key.Symbol], c.Value))
            .OrderBy(c => Array.IndexOf(ScopeCount.Fields, c.Field)).ThenBy(c => c.Name, StringComparer.Ordinal)];

        static void Count(Dictionary<(int, int), int> counts, int field, int symbol)
        {
            if (symbol != None)
            {
                counts[(field, symbol)] = counts.GetValueOrDefault((field, symbol)) + 1;
            }
        }
    }

    /// <summary>The key symbols of the entity names (named by live memories of <paramref name="tenant"/>) that <paramref name="query"/> mentions.</summary>
    public int[] EntitiesNamedIn(string tenant, string query) =>
        _symbols.TryGetValue(tenant, out var id) ? _entityNames.Find(id, query) : [];

    /// <summary>Gives <paramref name="memory"/> a fresh document number, retiring the one its id had.</summary>
    public int Add(string tenant, Memory memory)
    {
        Retire(memory.Id);
        var doc = NextDoc++;
        if (doc == _docs.Length)
        {
            Array.Resize(ref _docs, doc * 2);
        }
        var tags = new int[memory.Tags.Count];
        for (var i = 0; i < tags.Length; i++)
        {
            tags[i] = Intern(memory.Tags[i]);
        }
        var tenantSymbol = Intern(tenant);
        // Most memories name no entity: share the one empty array rather than allocate one per document.
        int[] entities = memory.Entities.Count == 0 ? [] : new int[memory.Entities.Count];
        for (var i = 0; i < entities.Length; i++)
        {
            var key = EntityNames.Key(memory.Entities[i]);
            entities[i] = Intern(key);
            _entityNames.Add(tenantSymbol, entities[i], key);
        }
        _docs[doc] = new DocInfo
        {
            Id = memory.Id,
            Live = true,
            Tenant = tenantSymbol,
            User = Intern(memory.UserId),
            Agent = Intern(memory.AgentId),
            Session = Intern(memory.SessionId),
            Namespace = Intern(memory.Namespace),
            Source = Intern(memory.Source),
            Type = Intern(memory.Type),
            Tier = memory.Tier,
            Tags = tags,
            Entities = entities,
            Importance = (float)memory.Importance,
            CreatedAtMs = memory.CreatedAt.ToUnixTimeMilliseconds(),
            UpdatedAtMs = memory.UpdatedAt.ToUnixTimeMilliseconds(),
            ExpiresAtMs = memory.ExpiresAt?.ToUnixTimeMilliseconds() ?? long.MaxValue,
            Superseded = memory.SupersededBy is not null,
        };
        _docById[memory.Id] = doc;
        return doc;
    }

    /// <summary>Marks the current version of <paramref name="memoryId"/> dead; returns its number, or -1.</summary>
    public int Retire(string memoryId)
    {
        if (!_docById.Remove(memoryId, out var doc))
        {
            return -1;
        }
        _docs[doc].Live = false;
        _docs[doc].Id = string.Empty; // as a snapshot loads it: a retired number keeps no strings alive
        _docs[doc].Tags = [];
        foreach (var entity in _docs[doc].Entities)
        {
            _entityNames.Remove(_docs[doc].Tenant, entity);
        }
        _docs[doc].Entities = [];
        return doc;
    }

    private int Intern(string? value)
    {
        if (value is null)
        {
            return None;
        }
        if (!_symbols.TryGetValue(value, out var id))
        {
            id = _symbols.Count;
            _symbols[value] = id;
        }
        return id;
    }
}

/// <summary>What the filters look at for one document version.</summary>
public struct DocInfo
{
    public string Id;
    public bool Live;
    public MemoryTier Tier;
    public float Importance;
    public int Tenant;
    public int User;
    public int Agent;
    public int Session;
    public int Namespace;
    public int Source;
    public int Type;
    public int[] Tags;

    /// <summary>Symbols of the entity names' keys (<see cref="EntityNames.Key"/>).</summary>
    public int[] Entities;
    public long CreatedAtMs;
    public long UpdatedAtMs;
    public long ExpiresAtMs;

    /// <summary>Another memory superseded this one (search leaves it out unless include_superseded).</summary>
    public bool Superseded;
}

/// <summary>How many current memories name one scope value (<see cref="DocTable.CountScopes"/>).</summary>
public sealed record ScopeCount(string Field, string Name, int Memories)
{
    /// <summary>The scope fields, in the order they are listed.</summary>
    public static readonly string[] Fields = ["user_id", "agent_id", "session_id", "namespace"];
}
