using Engram.Core.Indexing;
using Engram.Core.Memories;

namespace Engram.Core.Search;

/// <summary>
/// A <see cref="MemoryFilter"/> compiled against a <see cref="DocTable"/>: tenant, liveness and
/// expiry always, then every filter the request set. Same semantics as the store's SQL filter, so a
/// search and a listing with the same filters agree. Metadata equality is resolved by the store
/// beforehand into <see cref="_allowed"/>.
/// </summary>
public readonly struct DocFilter : IDocFilter
{
    private readonly DocTable _docs;
    private readonly int _tenant, _user, _agent, _session, _namespace, _source;
    private readonly int[]? _types;
    private readonly MemoryTier[]? _tiers;
    private readonly int[]? _tags;
    private readonly bool _anyTag;
    private readonly int _entity;
    private readonly long _nowMs, _createdAfter, _createdBefore, _updatedAfter, _updatedBefore;
    private readonly HashSet<int>? _allowed;
    private readonly bool _matchesNothing;
    private readonly bool _excludeSuperseded;

    public DocFilter(DocTable docs, string tenant, MemoryFilter filter, DateTimeOffset now, HashSet<int>? allowed)
    {
        _docs = docs;
        _tenant = docs.Lookup(tenant);
        _user = Scope(docs, filter.UserId);
        _agent = Scope(docs, filter.AgentId);
        _session = Scope(docs, filter.SessionId);
        _namespace = Scope(docs, filter.Namespace);
        _source = Scope(docs, filter.Source);
        _types = filter.Types is { Count: > 0 } types ? types.Select(docs.Lookup).ToArray() : null;
        _tiers = filter.Tiers is { Count: > 0 } tiers ? tiers.ToArray() : null;
        _tags = filter.Tags is { Count: > 0 } tags ? tags.Distinct(StringComparer.Ordinal).Select(docs.Lookup).ToArray() : null;
        _anyTag = filter.TagsMatch == TagMatch.Any;
        _entity = filter.Entity is null ? int.MinValue : docs.Lookup(EntityNames.Key(filter.Entity));
        _nowMs = now.ToUnixTimeMilliseconds();
        _createdAfter = filter.CreatedAfter?.ToUnixTimeMilliseconds() ?? long.MinValue;
        _createdBefore = filter.CreatedBefore?.ToUnixTimeMilliseconds() ?? long.MaxValue;
        _updatedAfter = filter.UpdatedAfter?.ToUnixTimeMilliseconds() ?? long.MinValue;
        _updatedBefore = filter.UpdatedBefore?.ToUnixTimeMilliseconds() ?? long.MaxValue;
        _allowed = allowed;
        _excludeSuperseded = filter.ExcludeSuperseded;
        _matchesNothing = _tenant < 0 || (!_anyTag && _tags is not null && _tags.Any(t => t < 0)) || _entity == -2;
    }

    // A scope filter on a value never indexed matches nothing: -2 never equals a stored symbol or None.
    private static int Scope(DocTable docs, string? value) => value is null ? int.MinValue : docs.Lookup(value);

    public bool Allows(int doc)
    {
        if (_matchesNothing)
        {
            return false;
        }
        ref readonly var d = ref _docs[doc];
        if (!d.Live || d.Tenant != _tenant || d.ExpiresAtMs <= _nowMs || (_excludeSuperseded && d.Superseded))
        {
            return false;
        }
        if ((_user != int.MinValue && d.User != _user) || (_agent != int.MinValue && d.Agent != _agent)
            || (_session != int.MinValue && d.Session != _session) || (_namespace != int.MinValue && d.Namespace != _namespace)
            || (_source != int.MinValue && d.Source != _source))
        {
            return false;
        }
        if (d.CreatedAtMs < _createdAfter || d.CreatedAtMs >= _createdBefore || d.UpdatedAtMs < _updatedAfter || d.UpdatedAtMs >= _updatedBefore)
        {
            return false;
        }
        if (_types is not null && Array.IndexOf(_types, d.Type) < 0)
        {
            return false;
        }
        if (_tiers is not null && Array.IndexOf(_tiers, d.Tier) < 0)
        {
            return false;
        }
        if (_tags is not null && !TagsMatch(d.Tags))
        {
            return false;
        }
        if (_entity != int.MinValue && Array.IndexOf(d.Entities, _entity) < 0)
        {
            return false;
        }
        return _allowed is null || _allowed.Contains(doc);
    }

    private bool TagsMatch(int[] docTags)
    {
        if (_anyTag)
        {
            foreach (var tag in _tags!)
            {
                if (tag >= 0 && Array.IndexOf(docTags, tag) >= 0)
                {
                    return true;
                }
            }
            return false;
        }
        foreach (var tag in _tags!)
        {
            if (Array.IndexOf(docTags, tag) < 0)
            {
                return false;
            }
        }
        return true;
    }
}
