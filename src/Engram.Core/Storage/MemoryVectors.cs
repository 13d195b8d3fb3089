namespace Engram.Core.Storage;

/// <summary>Names one memory version in one tenant: what a stored vector belongs to.</summary>
public readonly record struct VectorKey(string Tenant, string MemoryId, long Version);

/// <summary>
/// The vectors one embedding model made of one memory version: <see cref="Count"/> vectors of
/// <see cref="Dimensions"/> floats back to back in <see cref="Values"/>. Today a memory has one
/// vector; a long memory embedded in chunks has one per chunk, the first being the whole memory's
/// (or its first chunk's).
/// </summary>
public sealed record MemoryVectors(VectorKey Key, string Model, int Dimensions, float[] Values)
{
    public int Count => Dimensions == 0 ? 0 : Values.Length / Dimensions;

    /// <summary>The <paramref name="index"/>th vector.</summary>
    public ReadOnlySpan<float> Vector(int index) => Values.AsSpan(index * Dimensions, Dimensions);

    /// <summary>The first vector as an array of its own (what the index holds per memory today).</summary>
    public float[] First() => Count == 1 ? Values : Values[..Dimensions];

    /// <summary>One memory version's single vector.</summary>
    public static MemoryVectors Single(VectorKey key, string model, float[] vector) => new(key, model, vector.Length, vector);
}

/// <summary>Persisted embedding vectors, part of every <see cref="IMemoryStore"/> (keyed by memory version and model).</summary>
public interface IVectorStore
{
    /// <summary>
    /// The stored vectors of <paramref name="model"/> for exactly these memory versions (each key's
    /// tenant is filtered on); keys without any are left out.
    /// </summary>
    Task<IReadOnlyList<MemoryVectors>> GetVectorsAsync(IReadOnlyList<VectorKey> keys, string model, CancellationToken ct = default);

    /// <summary>
    /// Stores vectors in one transaction, each only while its memory version is live (a vector of a
    /// version updated or deleted meanwhile is dropped, so no row outlives its memory); relaxed
    /// durability, since a lost vector is only embedded again. Returns how many rows were written.
    /// </summary>
    Task<int> PutVectorsAsync(IReadOnlyList<MemoryVectors> vectors, CancellationToken ct = default);

    /// <summary>
    /// Deletes up to <paramref name="max"/> rows of models other than <paramref name="keepModel"/> and
    /// rows whose memory version is no longer live, in chunks; returns how many.
    /// </summary>
    Task<int> PruneVectorsAsync(string keepModel, int max, CancellationToken ct = default);

    /// <summary>Stored vector rows (every model and tenant): for tests and benchmarks, it counts the table.</summary>
    Task<long> CountVectorRowsAsync(CancellationToken ct = default);
}
