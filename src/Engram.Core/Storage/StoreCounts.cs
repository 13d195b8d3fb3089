namespace Engram.Core.Storage;

/// <summary>Store-wide counts, summed over tenants, as the writer keeps them (table <c>row_counts</c>, schema 11).</summary>
/// <param name="Memories">Stored memories by (tier, type), including those past their TTL the sweeper has not removed yet.</param>
public sealed record StoreCounts(IReadOnlyDictionary<(string Tier, string Type), long> Memories, long KvKeys, long GraphEntities, long GraphRelations)
{
    public static StoreCounts Empty { get; } = new(new Dictionary<(string, string), long>(), 0, 0, 0);

    /// <summary>Sums the rows of <c>row_counts</c> (kind, tier, type, n), as both stores read them.</summary>
    public sealed class Builder
    {
        private readonly Dictionary<(string, string), long> _memories = [];
        private long _kv, _entities, _relations;

        public void Add(string kind, string tier, string type, long n)
        {
            switch (kind)
            {
                case "memory":
                    _memories[(tier, type)] = _memories.GetValueOrDefault((tier, type)) + n;
                    break;
                case "kv":
                    _kv += n;
                    break;
                case "entity":
                    _entities += n;
                    break;
                case "relation":
                    _relations += n;
                    break;
            }
        }

        public StoreCounts Build() => new(_memories, _kv, _entities, _relations);
    }
}
