namespace Engram.Core.Search;

/// <summary>
/// Retrieval defaults (configuration section <c>Engram:Search</c>; also SEMANTIC_WEIGHT, RECENCY_WEIGHT,
/// ENTITY_WEIGHT, TOP_K_RETRIEVAL). A request may override the weights and the half-life per search.
/// </summary>
public sealed class SearchOptions
{
    /// <summary>
    /// 0.6 with <see cref="LexicalWeight"/> 0.4, cosine calibrated per model (<see cref="SemanticScale"/>): best or
    /// within 0.01 of best R@10 on both LoCoMo and LongMemEval dev for GloVe, arctic-embed-xs and MiniLM (bench/README.md).
    /// </summary>
    public double SemanticWeight { get; set; } = 0.6;

    public double LexicalWeight { get; set; } = 0.4;

    /// <summary>
    /// 0.05 with a 365-day half-life: a newer near-duplicate fact outranks the older one, at no cost on the dev
    /// sets; 0.1 with a 30-day half-life cost LongMemEval multi-session questions (which need old sessions)
    /// 0.04 R@10 and LoCoMo 0.01 (bench/README.md).
    /// </summary>
    public double RecencyWeight { get; set; } = 0.05;

    /// <summary>
    /// 0.1: a memory of importance 1 gains 0.05 over one of the default 0.5, which settles close calls and no more.
    /// Neutral on the dev sets (every turn has the default importance).
    /// </summary>
    public double ImportanceWeight { get; set; } = 0.1;

    /// <summary>
    /// Weight of the entity signal: the share of the entities the query names that a memory names too.
    /// 0.1 measured best on LoCoMo (+0.014 R@10, +0.028 R@1; bench/README.md); it changes nothing for
    /// memories without entities.
    /// </summary>
    public double EntityWeight { get; set; } = 0.1;

    public double RecencyHalfLifeDays { get; set; } = 365;

    /// <summary>How the two rankings are combined: a weighted sum of scaled scores, or reciprocal-rank fusion.</summary>
    public FusionMethod Fusion { get; set; } = FusionMethod.Weighted;

    /// <summary>How cosine similarity is scaled to 0..1 before the weighted sum.</summary>
    public SemanticScale SemanticScale { get; set; } = SemanticScale.Calibrated;

    /// <summary>RRF's rank offset (with <see cref="FusionMethod.Rrf"/>).</summary>
    public int RrfK { get; set; } = 60;

    /// <summary>
    /// Leave out candidates with no lexical match, no entity match and a cosine below
    /// <see cref="SemanticFloor"/>: fewer than k results rather than noise.
    /// </summary>
    public bool DropNoise { get; set; } = true;

    /// <summary>The cosine below which a memory that matches no query word is noise; null = the model's calibrated floor.</summary>
    public double? SemanticFloor { get; set; }

    /// <summary>Default min_score of a search (null: none); a request's min_score replaces it.</summary>
    public double? MinScore { get; set; }

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

    /// <summary>
    /// With the PostgreSQL store: megabytes of copies of the most recently indexed or found memories (<see cref="MemoryCopies"/>),
    /// from which search answers while the database is away (0: search fails with the database). Not used with SQLite.
    /// </summary>
    public int OutageCacheMB { get; set; } = 64;

    /// <summary>
    /// Compact an index (rebuild the HNSW graph from its live vectors; drop BM25's dead postings) once its removed
    /// entries reach this share of it: 0.2 bounds the dead weight to a quarter of the live set at about four
    /// graph inserts per removal. Set above 1 to turn automatic compaction off (engram reindex still reclaims all).
    /// </summary>
    public double CompactionShare { get; set; } = 0.2;

    /// <summary>...and at least this many removed entries (a small index is not worth the churn of a rebuild).</summary>
    public int CompactionMinimum { get; set; } = 1_000;

    public IEnumerable<string> Validate()
    {
        if (!(CompactionShare > 0) || CompactionMinimum < 1)
        {
            yield return "Engram:Search:CompactionShare must be > 0 and CompactionMinimum at least 1";
        }
        if (QueryCacheSize < 0)
        {
            yield return "Engram:Search:QueryCacheSize must be >= 0";
        }
        if (OutageCacheMB is < 0 or > 1_048_576)
        {
            yield return "Engram:Search:OutageCacheMB must be between 0 (off) and 1048576";
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
            yield return MaxK < 1
                ? $"Engram:Search:MaxK must be at least 1 (got {MaxK})"
                : $"Engram:Search:TopK (TOP_K_RETRIEVAL) must be between 1 and Engram:Search:MaxK, {MaxK} (got {TopK})";
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
        if (!Enum.IsDefined(Fusion) || !Enum.IsDefined(SemanticScale) || RrfK < 1)
        {
            yield return "Engram:Search:Fusion must be Weighted or Rrf, SemanticScale Raw, MinMax or Calibrated, RrfK at least 1";
        }
        if (SemanticFloor is { } floor && !(floor >= -1 && floor <= 1))
        {
            yield return "Engram:Search:SemanticFloor must be between -1 and 1";
        }
        if (MinScore is { } min && !double.IsFinite(min))
        {
            yield return "Engram:Search:MinScore must be a finite number";
        }
        if (CandidatesPerResult < 1 || MinCandidates < 1)
        {
            yield return "Engram:Search:CandidatesPerResult and MinCandidates must be at least 1";
        }
    }
}

/// <summary>How search combines its lexical and semantic rankings.</summary>
public enum FusionMethod
{
    /// <summary>Weighted sum of the scaled scores (BM25 min-max, cosine per <see cref="SearchOptions.SemanticScale"/>).</summary>
    Weighted,

    /// <summary>Reciprocal-rank fusion: each list contributes (k + 1) / (k + rank).</summary>
    Rrf,
}

/// <summary>How cosine similarity becomes the 0..1 semantic signal.</summary>
public enum SemanticScale
{
    /// <summary>The cosine itself (negative as 0).</summary>
    Raw,

    /// <summary>Min-max over the candidates.</summary>
    MinMax,

    /// <summary>Through the model's calibration: its "unrelated" level 0, its "strong match" level 1.</summary>
    Calibrated,
}
