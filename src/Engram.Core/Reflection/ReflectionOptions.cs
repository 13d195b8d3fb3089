namespace Engram.Core.Reflection;

/// <summary>
/// Reflections and consolidation (configuration section <c>Engram:Reflect</c>): the scheduled run's interval, the cosine
/// above which two memories of one scope are near-duplicates, and how much one run reads and writes.
/// </summary>
public sealed class ReflectionOptions
{
    /// <summary>
    /// Minutes between scheduled runs. The schedule is on by default only with a language model configured (reflections
    /// and merges); <see cref="Enabled"/> = true runs it without one too (duplicate flagging only), false never.
    /// </summary>
    public int IntervalMinutes { get; set; } = 60;

    /// <summary>The schedule: null (default) on when a model is configured; true always; false never. POST /v1/reflect and engram reflect work regardless.</summary>
    public bool? Enabled { get; set; }

    /// <summary>Two memories of one scope whose embeddings' cosine is at least this are near-duplicates.</summary>
    public double DuplicateThreshold { get; set; } = 0.92;

    /// <summary>New memories read per scope and run (the rest wait for the next run: the watermark moves only past what was read).</summary>
    public int MaxMemoriesPerScope { get; set; } = 50;

    /// <summary>Scopes handled per run, those changed longest ago first.</summary>
    public int MaxScopesPerRun { get; set; } = 200;

    /// <summary>At most this many reflections per scope and run.</summary>
    public int MaxReflectionsPerScope { get; set; } = 5;

    /// <summary>A scope needs at least this many new memories for the model to be asked for reflections.</summary>
    public int MinNewMemories { get; set; } = 2;

    /// <summary>Near neighbours looked at per new memory.</summary>
    public int Neighbours { get; set; } = 8;

    public IEnumerable<string> Validate()
    {
        if (IntervalMinutes is < 1 or > 10_080)
        {
            yield return "Engram:Reflect:IntervalMinutes must be between 1 and 10080 (a week)";
        }
        if (DuplicateThreshold is <= 0 or > 1 || double.IsNaN(DuplicateThreshold))
        {
            yield return "Engram:Reflect:DuplicateThreshold must be above 0 and at most 1, e.g. 0.92";
        }
        if (MaxMemoriesPerScope is < 1 or > 1000)
        {
            yield return "Engram:Reflect:MaxMemoriesPerScope must be between 1 and 1000";
        }
        if (MaxScopesPerRun is < 1 or > 100_000)
        {
            yield return "Engram:Reflect:MaxScopesPerRun must be between 1 and 100000";
        }
        if (MaxReflectionsPerScope is < 1 or > 50)
        {
            yield return "Engram:Reflect:MaxReflectionsPerScope must be between 1 and 50";
        }
        if (MinNewMemories is < 1 or > 1000)
        {
            yield return "Engram:Reflect:MinNewMemories must be between 1 and 1000";
        }
        if (Neighbours is < 1 or > 100)
        {
            yield return "Engram:Reflect:Neighbours must be between 1 and 100";
        }
    }
}
