using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Core.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary><c>POST /v1/search</c>: hybrid retrieval.</summary>
internal static class SearchEndpoints
{
    public static IEndpointRouteBuilder MapSearchEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/search", SearchAsync).WithName("Search").Requires(Role.Read).WithTags("search")
            .WithSummary("Hybrid search (semantic + lexical + recency + importance + entities the query names) with filters applied before the top-k cut.")
            .Accepts<SearchRequest>("application/json").Produces<SearchResponse>().ProducesProblem(400);
        return app;
    }

    /// <summary>Set on a search answered while the store was away.</summary>
    public const string StaleHeader = "Engram-Stale";

    private static async Task<IResult> SearchAsync(HttpContext http, SearchService search, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        SearchRequest request;
        try
        {
            request = await JsonBody.ReadAsync<SearchRequest>(http.Request, BodySize.Memory, ct);
        }
        catch (JsonException ex) when (FilterAtTopLevel(ex) is { } field)
        {
            throw new ValidationException(field, $"{field} belongs in filters: {{\"filters\":{{\"{field}\":...}}}}");
        }
        var result = await search.SearchAsync(http.GetCaller(), request, ct);
        var response = new SearchResponse(result.Results.Select(h => new ScoredMemory(h)).ToList(), Math.Round(result.TookMs, 3));
        if (result.Stale)
        {
            // The database is away: the body says so (clients that read only JSON), and so does a header (proxies, logs).
            http.Response.Headers[StaleHeader] = "database-unavailable";
            response = response with { Stale = new StaleResults("database_unavailable", result.Unavailable) };
        }
        return TypedResults.Ok(response);
    }

    /// <summary>
    /// A filter (user_id, tags, …) written beside the query instead of inside <c>filters</c>: the
    /// most common mistake with this body, so the refusal says where the field goes.
    /// </summary>
    private static string? FilterAtTopLevel(JsonException exception)
    {
        var detail = JsonErrors.Describe(exception, out var field);
        var topLevel = exception.Path is null or "$" || exception.Path == "$." + field;
        return field is not null && topLevel && detail.StartsWith("unknown field", StringComparison.Ordinal) && FilterNames.Contains(field)
            ? field
            : null;
    }

    private static readonly HashSet<string> FilterNames = [.. typeof(SearchFilters).GetProperties()
        .Select(p => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name))];
}

public sealed record SearchResponse(IReadOnlyList<ScoredMemory> Results, double TookMs)
{
    /// <summary>Present only when the store was away and the results came from the in-memory indexes (<see cref="StaleResults"/>).</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public StaleResults? Stale { get; init; }
}

/// <summary>
/// Why the results may be stale (<c>database_unavailable</c>) and how many ranked hits were left out because no copy of
/// the memory was at hand (<c>Engram:Search:OutageCacheMB</c>). Changes not yet indexed and the latest access counts may be missing.
/// </summary>
public sealed record StaleResults(string Reason, int LeftOut);

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
