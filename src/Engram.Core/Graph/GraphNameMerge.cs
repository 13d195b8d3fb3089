namespace Engram.Core.Graph;

/// <summary>
/// What bringing a store's graph entity names to NFC (<see cref="GraphValidator.NormalizeName"/>) does to the rows of
/// one entity whose stored name is not in NFC, worked out apart from either store so SQLite and PostgreSQL merge alike.
/// The entity's observations and relations move to the normalized name; where the entity of that name already has the
/// same observation, or a relation would become a duplicate triple (the stores keep triples unique), the row is
/// dropped instead: the older row wins (the target's, else the lower id).
/// </summary>
public static class GraphNameMerge
{
    /// <summary>A relation as the merge sees it: its row id and its triple.</summary>
    public readonly record struct RelationRow(long Rid, string From, string To, string Type);

    /// <summary>An observation row of the entity being renamed.</summary>
    public readonly record struct ObservationRow(long Oid, string Content);

    /// <summary>The relation rows to delete and the ones to re-point (with their new ends).</summary>
    public sealed record RelationPlan(IReadOnlyList<long> Delete, IReadOnlyList<RelationRow> Update);

    /// <summary>
    /// <paramref name="touching"/>: every relation of the tenant touching <paramref name="name"/> or <paramref name="target"/>
    /// (a re-pointed relation can only collide with a relation that touches the target).
    /// </summary>
    public static RelationPlan PlanRelations(string name, string target, IEnumerable<RelationRow> touching)
    {
        var rows = touching.DistinctBy(r => r.Rid).OrderBy(r => r.Rid).ToList();
        var taken = rows.Where(r => !Touches(r, name)).Select(r => (r.From, r.To, r.Type)).ToHashSet();
        var delete = new List<long>();
        var update = new List<RelationRow>();
        foreach (var row in rows.Where(r => Touches(r, name)))
        {
            var moved = row with { From = row.From == name ? target : row.From, To = row.To == name ? target : row.To };
            if (taken.Add((moved.From, moved.To, moved.Type)))
            {
                update.Add(moved);
            }
            else
            {
                delete.Add(row.Rid);
            }
        }
        return new RelationPlan(delete, update);
    }

    /// <summary>The observation ids of the renamed entity to drop: the target already holds the same text.</summary>
    public static IReadOnlyList<long> ObservationsToDrop(IEnumerable<ObservationRow> moving, IEnumerable<string> targetContents)
    {
        var held = targetContents.ToHashSet(StringComparer.Ordinal);
        return moving.Where(o => !held.Add(o.Content)).Select(o => o.Oid).ToList();
    }

    /// <summary>
    /// True when <paramref name="name"/> changes under NFC and the folding of invisible characters; <paramref name="normalized"/> is that form. A name whose NFC
    /// form is longer than <see cref="GraphValidator.MaxNameLength"/> (a few characters, such as U+0958, decompose) stays
    /// as stored: the service would refuse that form anyway, and on PostgreSQL the longer key could pass what a B-tree
    /// entry takes and fail the whole migration, so the store would not open.
    /// </summary>
    public static bool NeedsNormalizing(string name, out string normalized)
    {
        normalized = GraphValidator.NormalizeName(name);
        // A name of invisible characters only would become blank, which no entity may be called: it stays as stored.
        return !string.Equals(normalized, name, StringComparison.Ordinal) && normalized.Length > 0
            && Common.UnicodeText.CountCharacters(normalized) <= GraphValidator.MaxNameLength;
    }

    private static bool Touches(RelationRow row, string name) => row.From == name || row.To == name;
}
