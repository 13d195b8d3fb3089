using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Core.Graph;

/// <summary>
/// What a store's schema migration does to values written before invisible characters were folded out of them, worked
/// out apart from either store so SQLite and PostgreSQL migrate alike (graph entity names are merged by
/// <see cref="GraphNameMerge"/>). Entity and relation types and memory entity keys are compared as the service now
/// folds them (<see cref="GraphValidator.Type"/>, <see cref="EntityNames.Key"/>): a stored "works\u200B_at" could no
/// longer be named by any request (the request's type is folded to "works_at"), so neither deleted nor found. Memory tags
/// are folded as writes fold them (<see cref="MemoryValidator.FoldTag"/>).
/// </summary>
public static class InvisibleFold
{
    /// <summary>A relation as the migration sees it: its row id, tenant and triple.</summary>
    public readonly record struct RelationRow(long Rid, string Tenant, string From, string To, string Type);

    /// <summary>The relation rows to delete (their folded triple is taken) and the ones to give their folded type.</summary>
    public sealed record RelationPlan(IReadOnlyList<RelationRow> Delete, IReadOnlyList<(RelationRow Row, string Type)> Retype);

    /// <summary>
    /// <paramref name="candidates"/>: relations whose type may fold (non-ASCII), in row id order; <paramref name="taken"/>:
    /// whether a relation with that tenant and triple exists among the rows not being retyped. The older row wins, as in
    /// <see cref="GraphNameMerge"/>: a relation that already has the folded type, else the lower id.
    /// </summary>
    public static RelationPlan PlanRelations(IEnumerable<RelationRow> candidates, Func<string, string, string, string, bool> taken)
    {
        var retyped = new HashSet<(string, string, string, string)>();
        var delete = new List<RelationRow>();
        var retype = new List<(RelationRow, string)>();
        foreach (var row in candidates.OrderBy(r => r.Rid))
        {
            if (!Folds(row.Type, out var type))
            {
                continue;
            }
            if (taken(row.Tenant, row.From, row.To, type) || !retyped.Add((row.Tenant, row.From, row.To, type)))
            {
                delete.Add(row);
            }
            else
            {
                retype.Add((row, type));
            }
        }
        return new RelationPlan(delete, retype);
    }

    /// <summary>
    /// True when a stored entity or relation type changes under the fold; <paramref name="folded"/> is that form. A type of
    /// invisible characters only stays as stored (no type may be blank).
    /// </summary>
    public static bool Folds(string type, out string folded)
    {
        folded = UnicodeText.FoldInvisible(type);
        return folded.Length > 0 && !string.Equals(folded, type, StringComparison.Ordinal);
    }

    /// <summary>
    /// A memory's stored tags as a write of them would store them now: each folded as <see cref="MemoryValidator.Tags"/>
    /// folds it (<see cref="MemoryValidator.FoldTag"/>), a tag that folds to nothing dropped (a write would refuse it; the
    /// memory keeps its other tags), and a tag repeated once folded dropped, the first kept, in the order given.
    /// </summary>
    public static IReadOnlyList<string> Tags(IEnumerable<string> stored)
    {
        var result = new List<string>();
        foreach (var tag in stored.Select(MemoryValidator.FoldTag))
        {
            if (tag.Length > 0 && !result.Contains(tag, StringComparer.Ordinal))
            {
                result.Add(tag);
            }
        }
        return result;
    }

    /// <summary>The distinct keys a memory's stored entity names index under now (<see cref="EntityNames.Key"/>).</summary>
    public static IReadOnlyList<string> EntityKeys(IEnumerable<string> names) =>
        names.Select(EntityNames.Key).Where(k => k.Length > 0).Distinct(StringComparer.Ordinal).ToList();
}
