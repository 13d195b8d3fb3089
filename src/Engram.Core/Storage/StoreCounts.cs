namespace Engram.Core.Storage;

/// <summary>Store-wide counts, summed over tenants, as the writer keeps them (table <c>row_counts</c>, schema 11).</summary>
/// <param name="Memories">Stored memories by (tier, type), including those past their TTL the sweeper has not removed yet.</param>
public sealed record StoreCounts(IReadOnlyDictionary<(string Tier, string Type), long> Memories, long KvKeys, long GraphEntities, long GraphRelations)
{
    public static StoreCounts Empty { get; } = new(new Dictionary<(string, string), long>(), 0, 0, 0);
}
