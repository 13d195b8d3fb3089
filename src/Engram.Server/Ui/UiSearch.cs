using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Server.Http;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>
/// The search playground: a query with filters and weight sliders, every result with its explain breakdown as
/// a bar, and optionally a second weight setting side by side. All in the query string, so a search is a link.
/// </summary>
internal static class UiSearch
{
    private static readonly string[] Signals = ["semantic", "lexical", "recency", "importance", "entity"];

    public static async Task<IResult> PageAsync(HttpContext http, SearchService search, Microsoft.Extensions.Options.IOptions<EngramServerOptions> options, CancellationToken ct)
    {
        // The sliders start at the server's configured weights, so an untouched search ranks as REST does.
        var configured = options.Value.Search;
        var defaults = new Dictionary<string, double>
        {
            ["semantic"] = configured.SemanticWeight,
            ["lexical"] = configured.LexicalWeight,
            ["recency"] = configured.RecencyWeight,
            ["importance"] = configured.ImportanceWeight,
            ["entity"] = configured.EntityWeight,
        };
        var query = UiPage.Filled(http.Request.Query);
        var allowed = new List<string> { "q", "k", "compare" };
        allowed.AddRange(Signals.Select(s => "a_" + s));
        allowed.AddRange(Signals.Select(s => "b_" + s));
        var filter = QueryParser.Filter(query, [.. allowed]);
        var text = QueryParser.Single(query, "q");
        var k = QueryParser.Int(query, "k") ?? 10;
        var compare = QueryParser.Single(query, "compare") is "on" or "true";
        var a = Weights(query, "a_", defaults);
        var b = Weights(query, "b_", defaults);

        Task<SearchResult>? first = null, second = null;
        if (text is not null)
        {
            // Started here, on the pool, so the shell renders (and with streaming goes out) while the query is embedded and ranked.
            var filters = SearchFilters.From(filter);
            var caller = http.GetCaller();
            Task<SearchResult> Run(SearchWeights weights) =>
                Task.Run(() => search.SearchAsync(caller, new SearchRequest { Query = text, K = k, Filters = filters, Weights = weights, Explain = true }, ct), ct);
            first = Run(a);
            second = compare ? Run(b) : null;
        }
        var stream = UiPage.Streams(http);
        if (!stream)
        {
            // Not streamed (no script to put a streamed part in place): wait here, so a refusal keeps its status.
            await Task.WhenAll(new[] { first, second }.OfType<Task>());
        }
        return UiPage.Render<SearchPage>(http, new SearchPage.Data(query, text, k, compare, a, b, first, second), stream: stream);
    }

    private static SearchWeights Weights(IQueryCollection query, string prefix, Dictionary<string, double> defaults)
    {
        double Get(string signal) => UiMemories.Number(QueryParser.Single(query, prefix + signal), prefix + signal) ?? defaults[signal];
        return new SearchWeights { Semantic = Get("semantic"), Lexical = Get("lexical"), Recency = Get("recency"), Importance = Get("importance"), Entity = Get("entity") };
    }
}
