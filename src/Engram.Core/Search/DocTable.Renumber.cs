namespace Engram.Core.Search;

public sealed partial class DocTable
{
    /// <summary>
    /// The renumbering that gives the live documents dense numbers 0..LiveCount-1, in their old order, and forgets the retired ones: the map
    /// from old numbers to new (-1 for a retired number). The other indexes must be renumbered with the same
    /// map under the same lock (<see cref="MemoryIndex"/> does).
    /// </summary>
    internal int[] RenumberMap()
    {
        var map = new int[NextDoc];
        var next = 0;
        for (var doc = 0; doc < NextDoc; doc++)
        {
            map[doc] = _docs[doc].Live ? next++ : -1;
        }
        return map;
    }

    /// <summary>Applies a map made by <see cref="RenumberMap"/> with no change in between.</summary>
    internal void Renumber(ReadOnlySpan<int> map)
    {
        var docs = new DocInfo[Math.Max(1024, LiveCount + (LiveCount / 4))];
        for (var doc = 0; doc < NextDoc; doc++)
        {
            if (map[doc] >= 0)
            {
                docs[map[doc]] = _docs[doc];
                _docById[_docs[doc].Id] = map[doc];
            }
        }
        _docs = docs;
        NextDoc = LiveCount;
    }
}
