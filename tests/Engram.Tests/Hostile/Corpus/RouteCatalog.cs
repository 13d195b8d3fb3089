using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Tests.Hostile.Corpus;

/// <summary>One endpoint as the running server routes it: its pattern, the methods it maps, the body type it declares.</summary>
internal sealed record ServedRoute(string Pattern, IReadOnlyDictionary<string, Type?> Methods, IReadOnlyList<string> Parameters)
{
    /// <summary>The pattern with every parameter written <c>{name}</c> (no constraints, no catch-all stars).</summary>
    public string Template => Parameters.Aggregate(Pattern, (text, name) =>
        System.Text.RegularExpressions.Regex.Replace(text, "\\{\\**" + name + "[^}]*\\}", "{" + name + "}"));
}

/// <summary>
/// Every endpoint of the real server, read from its <see cref="EndpointDataSource"/>, so routes added
/// later (admin, MCP, mem0) are in the corpus without anyone listing them.
/// </summary>
internal static class RouteCatalog
{
    /// <summary>Every method the corpus sends to every route: the ones the route maps and the ones it does not.</summary>
    public static readonly string[] AllMethods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "BREW"];

    public static IReadOnlyList<ServedRoute> Read(IServiceProvider services)
    {
        var routes = new Dictionary<string, ServedRoute>(StringComparer.Ordinal);
        foreach (var endpoint in services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>())
        {
            // "/v1/memories/" (a group's root) and "/v1/memories" are one route to a client.
            var pattern = "/" + (endpoint.RoutePattern.RawText ?? "").Trim('/');
            var requestType = endpoint.Metadata.GetMetadata<IAcceptsMetadata>()?.RequestType;
            var methods = new Dictionary<string, Type?>(routes.TryGetValue(pattern, out var known) ? known.Methods : new Dictionary<string, Type?>());
            foreach (var method in endpoint.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods ?? AllMethods)
            {
                methods[method] = requestType;
            }
            routes[pattern] = new ServedRoute(pattern, methods, [.. endpoint.RoutePattern.Parameters.Select(p => p.Name)]);
        }
        return [.. routes.Values.OrderBy(r => r.Pattern, StringComparer.Ordinal)];
    }
}
