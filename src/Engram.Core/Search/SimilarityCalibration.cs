namespace Engram.Core.Search;

/// <summary>
/// Where a model's cosine similarities sit: <see cref="Floor"/> is what it gives text unrelated to the query
/// (the 95th percentile of query-to-turn cosines on the dev sets: bench/README.md), <see cref="Ceiling"/> a
/// strong match. Mapping cosine through them puts every model on one 0..1 scale, so fusion weights and the
/// noise floor need no per-model tuning. Unknown models (a remote endpoint) get raw cosine and no floor.
/// </summary>
public readonly record struct SimilarityCalibration(double Floor, double Ceiling)
{
    public static readonly SimilarityCalibration Uncalibrated = new(0, 1);

    public static SimilarityCalibration For(string modelId) => modelId switch
    {
        var m when m.StartsWith("builtin-glove", StringComparison.Ordinal) => new(0.82, 0.93),
        var m when m.StartsWith("onnx-snowflake-arctic-embed-xs", StringComparison.Ordinal) => new(0.56, 0.75),
        var m when m.StartsWith("onnx-all-minilm-l6-v2", StringComparison.Ordinal) => new(0.24, 0.69),
        _ => Uncalibrated,
    };

    /// <summary>0 at the floor, 1 at the ceiling, linear (so below the floor is negative, a strong match above 1).</summary>
    public double Scale(double cosine) => (cosine - Floor) / (Ceiling - Floor);
}
