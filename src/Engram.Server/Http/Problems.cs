using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Http;

/// <summary>
/// Maps every failure to an RFC 7807 problem body (<c>application/problem+json</c>) in one place, so
/// no endpoint can answer a bad request with a 500 or an empty body.
/// </summary>
internal static partial class Problems
{
    public static IResult Create(int status, string title, string detail, string? field = null, IDictionary<string, object?>? extra = null)
    {
        var problem = new ProblemDetails { Status = status, Title = title, Detail = detail, Type = TypeFor(status) };
        if (field is not null)
        {
            problem.Extensions["field"] = field;
        }
        if (extra is not null)
        {
            foreach (var (key, value) in extra)
            {
                problem.Extensions[key] = value;
            }
        }
        return TypedResults.Problem(problem);
    }

    public static IResult BadRequest(string field, string detail) => Create(400, "Invalid request", detail, field);

    public static IResult FromException(Exception exception, ILogger logger) => exception switch
    {
        ValidationException v => Create(400, v.Title, v.Message, v.Field),
        NotFoundException n => Create(404, n.Title, n.Message),
        ConflictException c => Create(409, c.Title, c.Message, extra: c.ExistingId is null ? null : new Dictionary<string, object?> { ["existing_id"] = c.ExistingId }),
        PreconditionFailedException p => Create(412, p.Title, p.Message, extra: new Dictionary<string, object?> { ["current_version"] = p.CurrentVersion }),
        BadHttpRequestException { StatusCode: 413 } b => Create(413, "Content too large", b.Message),
        BadHttpRequestException b => Create(b.StatusCode, "Bad request", b.Message),
        JsonException j => Create(400, "Invalid request", JsonErrors.Describe(j, out var field), field),
        OperationCanceledException => Create(499, "Client closed request", "the request was cancelled"),
        // Never the store's message: it can hold SQL text. 503 only for a store that may answer a retry.
        StoreException s when StoreFailures.IsUnavailable(s) => LogAndCreate(logger, s, 503, "Store unavailable", "the store is busy or unavailable; try again later"),
        _ => LogAndCreate(logger, exception, 500, "Internal error", "an unexpected error occurred; the server log has the details"),
    };

    private static IResult LogAndCreate(ILogger logger, Exception exception, int status, string title, string detail)
    {
        LogFailure(logger, exception, status);
        return Create(status, title, detail);
    }

    private static string TypeFor(int status) => status switch
    {
        400 => "https://tools.ietf.org/html/rfc9110#section-15.5.1",
        404 => "https://tools.ietf.org/html/rfc9110#section-15.5.5",
        409 => "https://tools.ietf.org/html/rfc9110#section-15.5.10",
        412 => "https://tools.ietf.org/html/rfc9110#section-15.5.13",
        413 => "https://tools.ietf.org/html/rfc9110#section-15.5.14",
        415 => "https://tools.ietf.org/html/rfc9110#section-15.5.16",
        503 => "https://tools.ietf.org/html/rfc9110#section-15.6.4",
        _ => "about:blank",
    };

    [LoggerMessage(EventId = 1000, Level = LogLevel.Error, Message = "request failed with {Status}")]
    private static partial void LogFailure(ILogger logger, Exception exception, int status);
}
