namespace Engram.Core.Search;

/// <summary>
/// Retrieval defaults (configuration section <c>Engram:Search</c>; also SEMANTIC_WEIGHT, RECENCY_WEIGHT,
/// ENTITY_WEIGHT, TOP_K_RETRIEVAL). A request may override the weights and the half-life per search.
/// </summary>
public sealed class SearchOptions
{
    /// <summary>0.7 with <see cref="LexicalWeight"/> 0.3 measured best on LoCoMo (cosine is used raw; its spread is narrower than BM25's).</summary>
    public double SemanticWeight { get; set; } = 0.7;

    public double LexicalWeight { get; set; } = 0.3;

    public double RecencyWeight { get; set; }

    public double ImportanceWeight { get; set; }

    /// <summary>
    /// Weight of the entity signal: the share of the entities the query names that a memory names too.
    /// 0.1 measured best on LoCoMo (+0.014 R@10, +0.028 R@1; bench/README.md); it changes nothing for
    /// memories without entities.
    /// </summary>
    public double EntityWeight { get; set; } = 0.1;

    public double RecencyHalfLifeDays { get; set; } = 30;

    /// <summary>Default k.</summary>
    public int TopK { get; set; } = 10;

    public int MaxK { get; set; } = 100;

    /// <summary>How many candidates each index contributes per requested result (before fusion).</summary>
    public int CandidatesPerResult { get; set; } = 10;

    public int MinCandidates { get; set; } = 100;

    /// <summary>From this many memories on, the BM25 and vector searches of one query run on two threads.</summary>
    public int ParallelSearchThreshold { get; set; } = 50_000;

    /// <summary>BM25 term-frequency saturation; 0.6 measured best on LoCoMo (short memories saturate early).</summary>
    public float Bm25K1 { get; set; } = 0.6f;

    /// <summary>BM25 length normalisation; 0.3 measured best on LoCoMo.</summary>
    public float Bm25B { get; set; } = 0.3f;

    /// <summary>How the vector index stores vectors: None (float32), Int8 (4x smaller, approximate), Int8Rerank (int8 walk, float re-score).</summary>
    public Indexing.Vector.VectorQuantization VectorQuantization { get; set; } = Indexing.Vector.VectorQuantization.None;

    /// <summary>HNSW links per node (hnswlib's usual 16).</summary>
    public int HnswM { get; set; } = 16;

    /// <summary>HNSW candidate list while inserting.</summary>
    public int HnswEfConstruction { get; set; } = 200;

    /// <summary>HNSW candidate list while searching (raised to the candidate count when that is larger).</summary>
    public int HnswEfSearch { get; set; } = 128;

    /// <summary>Light English suffix stemming in the lexical index (+0.03 R@10 on LoCoMo).</summary>
    public bool Stemming { get; set; } = true;

    /// <summary>
    /// Typo tolerance in the lexical index: a query word absent from the vocabulary counts as its nearest
    /// vocabulary words (edit distance 1, or 2 from six characters on) at this weight per edit; 0 turns it off.
    /// </summary>
    public float TypoWeight { get; set; } = 0.3f;

    /// <summary>Query vectors kept in an LRU cache keyed by model and query text (0 turns the cache off).</summary>
    public int QueryCacheSize { get; set; } = 1024;

    public IEnumerable<string> Validate()
    {
        if (QueryCacheSize < 0)
        {
            yield return "Engram:Search:QueryCacheSize must be >= 0";
        }
        foreach (var (name, value) in new[] { ("SemanticWeight", SemanticWeight), ("LexicalWeight", LexicalWeight), ("RecencyWeight", RecencyWeight), ("ImportanceWeight", ImportanceWeight), ("EntityWeight", EntityWeight) })
        {
            if (!double.IsFinite(value) || value < 0)
            {
                yield return $"Engram:Search:{name} must be a number >= 0";
            }
        }
        if (!(RecencyHalfLifeDays > 0))
        {
            yield return "Engram:Search:RecencyHalfLifeDays must be > 0";
        }
        if (MaxK < 1 || TopK < 1 || TopK > MaxK)
        {
            yield return "Engram:Search:TopK must be between 1 and MaxK";
        }
        if (!(Bm25K1 >= 0) || !(Bm25B >= 0 && Bm25B <= 1))
        {
            yield return "Engram:Search:Bm25K1 must be >= 0 and Bm25B between 0 and 1";
        }
        if (!(TypoWeight >= 0 && TypoWeight < 1))
        {
            yield return "Engram:Search:TypoWeight must be >= 0 and below 1";
        }
        if (HnswM is < 2 or > 128 || HnswEfConstruction < 1 || HnswEfSearch < 1)
        {
            yield return "Engram:Search:HnswM must be 2..128, HnswEfConstruction and HnswEfSearch at least 1";
        }
        if (!Enum.IsDefined(VectorQuantization))
        {
            yield return "Engram:Search:VectorQuantization must be None, Int8 or Int8Rerank";
        }
        if (CandidatesPerResult < 1 || MinCandidates < 1)
        {
            yield return "Engram:Search:CandidatesPerResult and MinCandidates must be at least 1";
        }
    }
}
