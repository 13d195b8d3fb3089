using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary>
/// Guards <c>/openapi/{documentName}.json</c> like every other route: unknown query parameters are
/// refused, and a document that does not exist is a 404 problem body (the framework's answer is plain text).
/// </summary>
internal static class OpenApiDocuments
{
    public const string Name = "v1";

    public static async ValueTask<object?> OnlyKnown(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var http = invocation.HttpContext;
        QueryParser.RefuseAllExcept(http.Request.Query);
        var name = http.GetRouteValue("documentName") as string;
        return name == Name
            ? await next(invocation)
            : Problems.For(404, $"no OpenAPI document '{name}'; the API is described at /openapi/{Name}.json");
    }
}
