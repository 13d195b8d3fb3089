namespace Engram.Tests.Hostile.Corpus;

/// <summary>
/// What a hostile request may get back. The default is a refusal: any 4xx with a problem body. Where
/// the input is legitimately acceptable the expectation lists the statuses it may get instead, and
/// says why (<see cref="Why"/>); a 2xx on a write is then an accepted write the ledger accounts for.
/// Never a 5xx, never a hang.
/// </summary>
internal sealed record Expectation(string Why, IReadOnlyList<int>? Statuses)
{
    /// <summary>Any 4xx with a problem body.</summary>
    public static Expectation Refused { get; } = new("refused", null);

    /// <summary>The server may close the connection without an answer (a request it cannot even frame).</summary>
    public bool MayClose { get; init; }

    /// <summary>A 2xx may be a write (the barrage accounts for what it wrote).</summary>
    public bool MayWrite { get; init; }

    /// <summary>Any status below 500 (a route the sample table does not know: its normal answer is not known).</summary>
    public bool AnyBelow500 { get; init; }

    /// <summary>An extra check on a 2xx body (e.g. a filter of meta-characters matched nothing); returns a failure or null.</summary>
    public Func<HostileAnswer, string?>? Check { get; init; }

    public static Expectation Only(string why, params int[] statuses) => new(why, statuses);

    /// <summary>The route's normal answer: what its valid sample gets (a body the route never reads, a header it ignores).</summary>
    public static Expectation AsSample(RouteSample sample, string why) => sample.Statuses.Length == 0
        ? new Expectation(why + " (route not in the sample table: any status below 500)", null) { AnyBelow500 = true, MayWrite = sample.Writes }
        : new Expectation(why, sample.Statuses) { MayWrite = sample.Writes };

    /// <summary>Refused, or the statuses listed (reads or writes the route may legitimately take).</summary>
    public static Expectation RefusedOr(string why, params int[] statuses) => new(why, [.. statuses, .. Enumerable.Range(400, 100)]);

    public bool Allows(int status) => AnyBelow500 ? status is > 0 and < 500 : Statuses is null ? status is >= 400 and < 500 : Statuses.Contains(status);
}

/// <summary>One request of the corpus: its payload class, a name, the request, and what it may get.</summary>
internal sealed record Probe(string Label, string Class, string Name, HostileRequest Request, Expectation Expect);
