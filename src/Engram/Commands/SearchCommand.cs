using System.CommandLine;
using Engram.Cli.Output;
using Engram.Core.Search;

namespace Engram.Cli.Commands;

/// <summary><c>engram search "query"</c>: hybrid search (POST /v1/search).</summary>
internal static class SearchCommand
{
    public static Command Create()
    {
        var query = new Argument<string>("query") { Description = "What to look for, in plain words." };
        var k = OptionFactory.Count("--k", "How many results (default 10, at most 100).");
        var filters = new FilterOptions("search");
        var minScore = OptionFactory.Number("--min-score", "Drop results scoring below this.");
        var semantic = OptionFactory.Number("--semantic", "Weight of meaning similarity (default from configuration).", "W");
        var lexical = OptionFactory.Number("--lexical", "Weight of word overlap (BM25).", "W");
        var recency = OptionFactory.Number("--recency", "Weight of recency.", "W");
        var importance = OptionFactory.Number("--importance", "Weight of importance.", "W");
        var entityWeight = OptionFactory.Number("--entity-weight", "Weight of memories naming an entity the query names.", "W");
        var halfLife = OptionFactory.Number("--half-life", "Recency half-life in days.", "DAYS");
        var explain = new Option<bool>("--explain") { Description = "Show each signal's share of every score." };

        return MemoryCommand.Create("search", "Find memories by meaning and words.", async context =>
        {
            var filter = filters.Build(context.Parse);
            var request = new SearchRequest
            {
                Query = context.Get(query),
                K = context.Get(k),
                Filters = SearchFilters.From(filter),
                MinScore = context.Get(minScore),
                Weights = context.Get(semantic) is null && context.Get(lexical) is null && context.Get(recency) is null && context.Get(importance) is null
                    && context.Get(entityWeight) is null
                    ? null
                    : new SearchWeights
                    {
                        Semantic = context.Get(semantic),
                        Lexical = context.Get(lexical),
                        Recency = context.Get(recency),
                        Importance = context.Get(importance),
                        Entity = context.Get(entityWeight),
                    },
                RecencyHalfLifeDays = context.Get(halfLife),
                Explain = context.Get(explain),
            };
            var response = await context.Client.SearchAsync(request, context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, response);
                return;
            }
            if (response.Results.Count == 0)
            {
                context.Output.WriteLine("No memories match.");
                return;
            }
            foreach (var hit in response.Results)
            {
                context.Output.WriteLine($"{hit.Score:0.000}  {hit.Id}  {Text.OneLine(hit.Content, 80)}");
                if (hit.Explain is { } e)
                {
                    context.Output.WriteLine($"       semantic {e.SemanticContribution:0.000}  lexical {e.LexicalContribution:0.000}  recency {e.RecencyContribution:0.000}  importance {e.ImportanceContribution:0.000}  entity {e.EntityContribution:0.000}");
                }
            }
            context.Output.WriteLine();
            context.Output.WriteLine($"{response.Results.Count} results in {response.TookMs:0.#} ms");
        }, configure: command =>
        {
            command.Arguments.Add(query);
            command.Options.Add(k);
            filters.AddTo(command);
            foreach (var option in new Option[] { minScore, semantic, lexical, recency, importance, entityWeight, halfLife, explain })
            {
                command.Options.Add(option);
            }
        });
    }
}
