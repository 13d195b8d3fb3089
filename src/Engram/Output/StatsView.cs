using Engram.Core.Memories;

namespace Engram.Cli.Output;

/// <summary>The store's counts and size.</summary>
internal static class StatsView
{
    public static void Write(TextWriter output, StoreStatistics stats)
    {
        output.WriteLine($"{"memories:",-12} {Text.Number(stats.Memories.Total)}");
        output.WriteLine($"{"by type:",-12} {Counts(stats.Memories.ByType)}");
        output.WriteLine($"{"by tier:",-12} {Counts(stats.Memories.ByTier)}");
        // Store-wide figures come only with an admin key.
        if (stats.StoreBytes is { } bytes)
        {
            output.WriteLine($"{"store size:",-12} {Text.Bytes(bytes)}");
        }
        if (stats.LastSeq is { } lastSeq)
        {
            output.WriteLine($"{"last seq:",-12} {Text.Number(lastSeq)}");
        }
        if (stats.Index is { } index)
        {
            output.WriteLine($"{"index:",-12} {Text.Number(index.Documents)} memories, {Text.Number(index.Vectors)} vectors, up to seq {Text.Number(index.AppliedSeq)}; model {index.EmbeddingModel}");
            if (index.PendingEmbeddings > 0)
            {
                output.WriteLine(index.EmbeddingRate > 0
                    ? $"{"",-12} {Text.Number(index.PendingEmbeddings)} memories waiting for their embedding ({index.EmbeddingRate:0.#} a second)"
                    : $"{"",-12} {Text.Number(index.PendingEmbeddings)} memories waiting for their embedding");
            }
        }
    }

    private static string Counts(IReadOnlyDictionary<string, long> counts) =>
        counts.Count == 0
            ? "-"
            : string.Join(", ", counts.OrderByDescending(c => c.Value).ThenBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key} {Text.Number(c.Value)}"));
}
