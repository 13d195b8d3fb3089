using System.Globalization;
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

        var html = new HtmlBuilder();
        html.Add($"<form class=\"card\" method=\"get\" action=\"/ui/search\" role=\"search\"><div class=\"filters\" style=\"display:grid\">");
        html.Add($"<label style=\"grid-column:1/-1\">Query<input name=\"q\" type=\"search\" value=\"{text}\" autofocus></label>");
        foreach (var (name, label) in new[] { ("user_id", "User"), ("agent_id", "Agent"), ("type", "Type"), ("tags", "Tags (comma)"), ("entity", "Entity") })
        {
            html.Add($"<label>{label}<input name=\"{name}\" value=\"{query[name].ToString()}\"></label>");
        }
        html.Add($"<label>Results<input name=\"k\" type=\"number\" min=\"1\" max=\"100\" value=\"{k}\"></label></div>");
        Sliders(html, "a_", "Weights", a);
        html.Add($"<label class=\"row\" style=\"flex-direction:row\"><input type=\"checkbox\" name=\"compare\" value=\"on\"{new Raw(compare ? " checked" : "")}> Compare with a second setting</label>");
        Sliders(html, "b_", "Second setting", b);
        html.Add($"<p><button type=\"submit\">Search</button></p></form>");
        html.Add($"<p class=\"legend\"><span><i class=\"b-sem\"></i>semantic</span><span><i class=\"b-lex\"></i>lexical</span><span><i class=\"b-rec\"></i>recency</span><span><i class=\"b-imp\"></i>importance</span><span><i class=\"b-ent\"></i>entity</span></p>");

        if (text is not null)
        {
            var filters = SearchFilters.From(filter);
            var caller = http.GetCaller();
            var first = await search.SearchAsync(caller, new SearchRequest { Query = text, K = k, Filters = filters, Weights = a, Explain = true }, ct);
            if (compare)
            {
                var second = await search.SearchAsync(caller, new SearchRequest { Query = text, K = k, Filters = filters, Weights = b, Explain = true }, ct);
                html.Add($"<div class=\"compare\"><section aria-label=\"First setting\" id=\"results-a\"><h2>Weights A</h2>");
                Results(html, first);
                html.Add($"</section><section aria-label=\"Second setting\" id=\"results-b\"><h2>Weights B</h2>");
                Results(html, second);
                html.Add($"</section></div>");
            }
            else
            {
                html.Add($"<section id=\"results-a\" aria-label=\"Results\">");
                Results(html, first);
                html.Add($"</section>");
            }
        }
        return UiPage.Render(http, "Search", "/ui/search", html);
    }

    private static SearchWeights Weights(IQueryCollection query, string prefix, Dictionary<string, double> defaults)
    {
        double Get(string signal) => UiMemories.Number(QueryParser.Single(query, prefix + signal), prefix + signal) ?? defaults[signal];
        return new SearchWeights { Semantic = Get("semantic"), Lexical = Get("lexical"), Recency = Get("recency"), Importance = Get("importance"), Entity = Get("entity") };
    }

    private static void Sliders(HtmlBuilder html, string prefix, string title, SearchWeights w)
    {
        html.Add($"<fieldset class=\"filters\" style=\"display:grid;border:1px solid #d9dde2;border-radius:4px\"><legend>{title}</legend>");
        foreach (var (signal, value) in new[] { ("semantic", w.Semantic), ("lexical", w.Lexical), ("recency", w.Recency), ("importance", w.Importance), ("entity", w.Entity) })
        {
            var id = prefix + signal;
            html.Add($"<label for=\"{id}\">{signal} <output for=\"{id}\">{(value ?? 0).ToString("0.00", CultureInfo.InvariantCulture)}</output>");
            html.Add($"<input type=\"range\" id=\"{id}\" name=\"{id}\" min=\"0\" max=\"1\" step=\"0.05\" value=\"{(value ?? 0).ToString("0.##", CultureInfo.InvariantCulture)}\"></label>");
        }
        html.Add($"</fieldset>");
    }

    private static void Results(HtmlBuilder html, SearchResult result)
    {
        html.Add($"<p class=\"muted\">{result.Results.Count} {(result.Results.Count == 1 ? "result" : "results")} in {result.TookMs.ToString("0.0", CultureInfo.InvariantCulture)} ms</p><ol class=\"timeline\">");
        foreach (var hit in result.Results)
        {
            html.Add($"<li class=\"result\"><a href=\"/ui/memories/{hit.Memory.Id}\">{UiMemories.Short(hit.Memory.Content, 200)}</a><br><span class=\"mono\">score {hit.Score.ToString("0.000", CultureInfo.InvariantCulture)}</span>");
            if (hit.Explain is { } e)
            {
                html.Add($"<div class=\"bars explain\" role=\"img\" aria-label=\"semantic {e.SemanticContribution:0.000}, lexical {e.LexicalContribution:0.000}, recency {e.RecencyContribution:0.000}, importance {e.ImportanceContribution:0.000}, entity {e.EntityContribution:0.000}\">");
                foreach (var (css, share) in new[] { ("b-sem", e.SemanticContribution), ("b-lex", e.LexicalContribution), ("b-rec", e.RecencyContribution), ("b-imp", e.ImportanceContribution), ("b-ent", e.EntityContribution) })
                {
                    var width = Math.Clamp(share * 100, 0, 100); // contributions add up to the score (0..1): the bar's length is the score
                    html.Add($"<span class=\"{css}\" style=\"width:{width.ToString("0.#", CultureInfo.InvariantCulture)}%\"></span>");
                }
                html.Add($"</div><span class=\"mono muted\">sem {e.Semantic:0.00} · lex {e.Lexical:0.00} · rec {e.Recency:0.00} · imp {e.Importance:0.00} · ent {e.Entity:0.00}</span>");
            }
            html.Add($"</li>");
        }
        html.Add($"</ol>");
    }
}
