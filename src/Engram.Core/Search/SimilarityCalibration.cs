namespace Engram.Core.Search;

/// <summary>
/// Where a model's cosine similarities sit, measured on the dev sets (bench/README.md): <see cref="Unrelated"/>
/// is the median cosine of a question with random turns, <see cref="Match"/> the 95th percentile of a question
/// with its evidence turns, <see cref="Noise"/> the floor for memories sharing no word with the query: that
/// median for the transformers; 0.5 for GloVe, whose averaged word vectors give short queries low cosines even
/// with real matches ("dog pet" and a sentence about a puppy: 0.61; an unrelated physics query: below 0.1).
/// None cost recall on dev. Mapping cosine through
/// Unrelated..Match puts every model on one scale, so one set of fusion weights serves them all; below Noise a
/// memory that shares no word with the query is not a result. GloVe keeps raw cosine (Unrelated 0, Match 1): its
/// sentence means put short queries' real matches below the long questions' median (raw measured as well or
/// better on both dev sets). Unknown models (a remote endpoint) get raw cosine and no floor.
/// </summary>
public readonly record struct SimilarityCalibration(double Unrelated, double Match, double Noise)
{
    public static readonly SimilarityCalibration Uncalibrated = new(0, 1, double.NegativeInfinity);

    public static SimilarityCalibration For(string modelId) => modelId switch
    {
        var m when m.StartsWith("builtin-glove", StringComparison.Ordinal) => new(0, 1, 0.50),
        var m when m.StartsWith("onnx-snowflake-arctic-embed-xs", StringComparison.Ordinal) => new(0.56, 0.75, 0.56),
        var m when m.StartsWith("onnx-all-minilm-l6-v2", StringComparison.Ordinal) => new(0.24, 0.69, 0.24),
        _ => Uncalibrated,
    };

    /// <summary>0 at or below <see cref="Unrelated"/>, 1 at <see cref="Match"/>, linear (a closer match above 1); never negative, so scores stay positive.</summary>
    public double Scale(double cosine) => Math.Max(0, (cosine - Unrelated) / (Match - Unrelated));
}
