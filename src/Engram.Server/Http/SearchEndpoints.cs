using Engram.Core.Memories;
using Engram.Core.Search;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary><c>POST /v1/search</c>: hybrid retrieval.</summary>
internal static class SearchEndpoints
{
    public static IEndpointRouteBuilder MapSearchEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/search", SearchAsync).WithName("Search").WithTags("search")
            .WithSummary("Hybrid search (semantic + lexical + recency + importance + entities the query names) with filters applied before the top-k cut.")
            .Accepts<SearchRequest>("application/json").Produces<SearchResponse>().ProducesProblem(400);
        return app;
    }

    private static async Task<IResult> SearchAsync(HttpContext http, SearchService search, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        var request = await JsonBody.ReadAsync<SearchRequest>(http.Request, BodySize.Memory, ct);
        var result = await search.SearchAsync(http.GetCaller(), request, ct);
        return TypedResults.Ok(new SearchResponse(result.Results.Select(h => new ScoredMemory(h)).ToList(), Math.Round(result.TookMs, 3)));
    }
}

public sealed record SearchResponse(IReadOnlyList<ScoredMemory> Results, double TookMs);

/// <summary>A search result: the memory's fields plus <c>score</c> and, when asked, <c>explain</c>.</summary>
public sealed record ScoredMemory : Memory
{
    [System.Text.Json.Serialization.JsonConstructor]
    public ScoredMemory()
    {
    }

    [System.Diagnostics.CodeAnalysis.SetsRequiredMembers]
    public ScoredMemory(SearchHit hit) : base(hit.Memory)
    {
        Score = Math.Round(hit.Score, 6);
        Explain = hit.Explain;
    }

    public double Score { get; init; }

    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public SearchExplanation? Explain { get; init; }
}
