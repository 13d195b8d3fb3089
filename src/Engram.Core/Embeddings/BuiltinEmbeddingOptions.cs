using System.Globalization;

namespace Engram.Core.Embeddings;

/// <summary>How word vectors are weighted into a sentence vector.</summary>
public enum WordWeighting
{
    /// <summary>Every known token counts once (plain mean).</summary>
    Mean,

    /// <summary>Smooth inverse frequency: a / (a + p(w)), p(w) from the word's frequency rank by Zipf's law.</summary>
    Sif,
}

/// <summary>Settings of <see cref="BuiltinEmbeddingProvider"/>. The defaults are what measured best on the LoCoMo dev split.</summary>
public sealed record BuiltinEmbeddingOptions
{
    public static BuiltinEmbeddingOptions Default { get; } = new();

    public WordWeighting Weighting { get; init; } = WordWeighting.Sif;

    /// <summary>SIF's a: words with p(w) much above a are weighted down. 1e-3 is the SIF paper's usual value.</summary>
    public float SifA { get; init; } = 1e-3f;

    /// <summary>
    /// Subtract the projection on a fixed common component (the expected sentence vector under Zipf). Off by
    /// default: on the LoCoMo dev split it lowered R@10 from 0.441 to 0.399 (tools/embeddings/README.md).
    /// </summary>
    public bool RemoveCommonComponent { get; init; }

    /// <summary>Let punctuation and symbol tokens (",", "?", "$") contribute their vectors.</summary>
    public bool IncludeSymbols { get; init; }

    /// <summary>A suffix for the model id when settings differ from the defaults, so vectors record how they were made.</summary>
    internal string Describe()
    {
        if (this == Default)
        {
            return "";
        }
        var weighting = Weighting == WordWeighting.Mean ? "mean" : "sif" + SifA.ToString("0.#####", CultureInfo.InvariantCulture);
        return $"+{weighting}{(RemoveCommonComponent ? "-cc" : "")}{(IncludeSymbols ? "-sym" : "")}";
    }
}
