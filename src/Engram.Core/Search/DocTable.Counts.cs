using Engram.Core.Memories;

namespace Engram.Core.Search;

public sealed partial class DocTable
{
    /// <summary>
    /// The live documents <paramref name="filter"/> allows, in all and by type and tier: the counts of /v1/stats from the
    /// index, for when the store cannot give them (one pass over the table).
    /// </summary>
    public MemoryCounts Count(DocFilter filter)
    {
        var byTypeSymbol = new Dictionary<int, long>();
        var byTier = new Dictionary<string, long>(StringComparer.Ordinal);
        long total = 0;
        for (var doc = 0; doc < NextDoc; doc++)
        {
            if (!_docs[doc].Live || !filter.Allows(doc))
            {
                continue;
            }
            total++;
            byTypeSymbol[_docs[doc].Type] = byTypeSymbol.GetValueOrDefault(_docs[doc].Type) + 1;
            var tier = _docs[doc].Tier.ToWire();
            byTier[tier] = byTier.GetValueOrDefault(tier) + 1;
        }
        var names = _symbols.Where(s => byTypeSymbol.ContainsKey(s.Value)).ToDictionary(s => s.Value, s => s.Key);
        var byType = byTypeSymbol.ToDictionary(t => names.GetValueOrDefault(t.Key, "?"), t => t.Value, StringComparer.Ordinal);
        return new MemoryCounts(total, byType, byTier);
    }
}
