using Engram.Core.Configuration;
using Engram.Core.KeyValue;
using Engram.Core.Memories;

namespace Engram.Core.Storage.Transfer;

/// <summary>
/// The write paths' rules that <see cref="ImportRecords"/> holds every record to, so an import (and a restore or a
/// migration, which read records the same way) never stores what the API would have refused: the memory fields through
/// <see cref="MemoryValidator"/>, keys through <see cref="KvKeys"/>, values through <see cref="KvService.CheckValue"/>,
/// the graph through <see cref="Graph.GraphValidator"/>, under the limits of the importing process's configuration
/// (<c>Engram:Limits</c>, <c>Engram:KeyValue:MaxValueBytes</c>): a file written by a server whose limits were raised
/// imports where the same limits are set.
/// </summary>
public sealed class ImportValidation(MemoryLimits memories, int maxKvValueBytes)
{
    /// <summary>
    /// The highest version (of a memory, a key, a history entry or stored vectors) an import takes: 2^53 - 1, the
    /// largest integer every JSON reader holds exactly. Versions start at 1 and grow by one per write, so no store
    /// reaches it (a million writes a second for 285 years); a file that says more was edited, and a version near
    /// <see cref="long.MaxValue"/> would wrap to a negative one on the next write.
    /// </summary>
    public const long MaxVersion = (1L << 53) - 1;

    /// <summary>The defaults of <see cref="MemoryLimits"/> and <see cref="KvOptions"/>.</summary>
    public static ImportValidation Default { get; } = new(new MemoryLimits(), new KvOptions().MaxValueBytes);

    /// <summary>
    /// Every rule but the configurable sizes: what a backup's verification checks, which must not call a backup of a
    /// server with raised limits unsound (the restore itself checks the sizes, under the restoring process's limits).
    /// </summary>
    public static ImportValidation Unbounded { get; } = new(new MemoryLimits
    {
        MaxContentChars = int.MaxValue,
        MaxMetadataBytes = int.MaxValue,
        MaxTags = int.MaxValue,
        MaxTagChars = int.MaxValue,
        MaxEntities = int.MaxValue,
        MaxEntityChars = int.MaxValue,
        MaxFieldChars = int.MaxValue,
    }, int.MaxValue)
    { KeepsStoredIdentifiers = true };

    /// <summary>
    /// Whether scope values and key-value keys holding an invisible character (<see cref="Common.UnicodeText.RequireVisible"/>)
    /// are taken as they are: true where a store's own records are copied (a backup's verification and restore, a
    /// migration to another store), since a store written before that rule may hold such an identifier and must stay
    /// possible to back up, restore and migrate; false for an import, which is held to the write paths' rules.
    /// </summary>
    public bool KeepsStoredIdentifiers { get; init; }

    /// <summary>These rules and limits for a copy of a store's own records (<see cref="KeepsStoredIdentifiers"/>).</summary>
    public ImportValidation ForStoreCopy() => KeepsStoredIdentifiers ? this : new(Memories.Limits, MaxKvValueBytes) { KeepsStoredIdentifiers = true };

    public MemoryValidator Memories { get; } = new(memories);

    /// <summary>
    /// The longest line an import reads, in characters: longer is refused while reading, before it is held whole (a
    /// 200 MB line had cost 1.5 GB of memory before its record was refused). A record's size has no exact bound (a memory
    /// keeps every version in its history), so the bound is generous: the largest vector record the import takes
    /// (<see cref="ImportRecords.MaxVectorsPerMemory"/> vectors of <see cref="ImportRecords.MaxVectorDimensions"/> floats in
    /// base64, about 90 million characters), or 64 times the largest memory or key-value value these limits allow,
    /// whichever is more.
    /// </summary>
    public int MaxLineChars { get; } = (int)Math.Min(int.MaxValue - 1024, Math.Max(
        ((long)ImportRecords.MaxVectorsPerMemory * ImportRecords.MaxVectorDimensions * sizeof(float) + 2) / 3 * 4 + 64 * 1024,
        64L * Math.Max(memories.SingleRequestBodyBytes(), maxKvValueBytes)));

    public int MaxKvValueBytes { get; } = maxKvValueBytes;
}
