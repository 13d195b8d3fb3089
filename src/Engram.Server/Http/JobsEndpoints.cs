using Engram.Core.Llm;
using Engram.Core.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Engram.Server.Http;

/// <summary><c>/v1/jobs/{id}</c>: an extraction job's status, input, decisions, memory ids and error (the caller's tenant and scope only).</summary>
internal static class JobsEndpoints
{
    public static IEndpointRouteBuilder MapJobsEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/jobs/{id}", GetAsync).WithTags("memories").WithName("GetJob").Requires(Role.Read)
            .WithSummary("An extraction job: status (queued, running, succeeded, failed), the conversation, the model's decisions, the memory ids, the error.")
            .Produces<ExtractionJob>().ProducesProblem(404);
        return app;
    }

    private static async Task<IResult> GetAsync(string id, HttpContext http, ConversationExtractor extractor, CancellationToken ct)
    {
        QueryParser.RefuseAllExcept(http.Request.Query);
        return TypedResults.Ok(await extractor.GetJobAsync(http.GetCaller(), id, ct));
    }
}

/// <summary>The answer to <c>POST /v1/memories</c> with <c>messages</c>: the queued job (202), or the job itself with <c>wait=true</c>.</summary>
public sealed record JobAccepted(string JobId, string Status);
