using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Logging;

namespace Engram.Server.Http;

/// <summary>
/// Maps every failure to an RFC 7807 problem body (<c>application/problem+json</c>) in one place, so
/// no endpoint can answer a bad request with a 500 or an empty body. The title and type come from the
/// status alone (<see cref="KindOf"/>): clients can switch on either, and they never disagree.
/// </summary>
internal static partial class Problems
{
    private const string Rfc9110 = "https://tools.ietf.org/html/rfc9110#section-";

    /// <summary>How System.Text.Json's message begins when a value could not be written (its reads say "could not be converted").</summary>
    private const string SerializeFailed = "The object or value could not be serialized";

    public static IResult For(int status, string detail, string? field = null, IDictionary<string, object?>? extra = null)
    {
        var (title, type) = KindOf(status);
        var problem = new ProblemDetails { Status = status, Title = title, Detail = detail, Type = type };
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

    public static IResult BadRequest(string field, string detail) => For(400, detail, field);

    public static IResult FromException(Exception exception, ILogger logger) => exception switch
    {
        ValidationException v => For(400, v.Message, v.Field),
        Core.Operations.WritesRefusedException w => For(503, w.Message, extra: new Dictionary<string, object?> { ["reason"] = w.Reason == Core.Operations.WriteRefusal.ReadOnly ? "read_only" : "memory_budget" }),
        NotFoundException n => For(404, n.Message),
        ForbiddenException f => For(403, f.Message),
        ConflictException c => For(409, c.Message, extra: c.ExistingId is null ? null : new Dictionary<string, object?> { ["existing_id"] = c.ExistingId }),
        PreconditionFailedException p => For(412, p.Message, extra: new Dictionary<string, object?> { ["current_version"] = p.CurrentVersion }),
        BadHttpRequestException b => For(b.StatusCode, b.Message),
        // Writing a response failed (the server's fault, whatever the request was): not "malformed JSON" from the client.
        JsonException { InnerException: InvalidOperationException } j when j.Message.StartsWith(SerializeFailed, StringComparison.Ordinal) =>
            LogAndCreate(logger, exception, 500, "an unexpected error occurred; the server log has the details"),
        JsonException j => For(400, JsonErrors.Describe(j, out var field), field),
        OperationCanceledException => For(499, "the request was cancelled"),
        Core.Operations.BackupFolderException b => For(503, b.Message, extra: new Dictionary<string, object?> { ["reason"] = "backup_folder" }),
        Core.Llm.LlmNotConfiguredException l => For(503, l.Message, extra: new Dictionary<string, object?> { ["reason"] = "llm_not_configured" }),
        Core.Llm.LlmUnavailableException l => For(502, l.Message, extra: new Dictionary<string, object?> { ["reason"] = "llm_unavailable" }),
        Core.Llm.LlmOutputException l => For(502, l.Message, extra: new Dictionary<string, object?> { ["reason"] = "llm_invalid_output" }),
        // Never the store's message: it can hold SQL text. 503 only for a store that may answer a retry.
        StoreException s when StoreFailures.IsUnavailable(s) => LogUnavailable(logger, s),
        _ => LogAndCreate(logger, exception, 500, "an unexpected error occurred; the server log has the details"),
    };

    /// <summary>The one title and type URI of each status Engram answers with a problem body.</summary>
    public static (string Title, string Type) KindOf(int status) => status switch
    {
        400 => ("Invalid request", Rfc9110 + "15.5.1"),
        401 => ("Unauthorized", Rfc9110 + "15.5.2"),
        403 => ("Forbidden", Rfc9110 + "15.5.4"),
        404 => ("Not found", Rfc9110 + "15.5.5"),
        405 => ("Method not allowed", Rfc9110 + "15.5.6"),
        408 => ("Request timeout", Rfc9110 + "15.5.9"),
        409 => ("Conflict", Rfc9110 + "15.5.10"),
        411 => ("Length required", Rfc9110 + "15.5.12"),
        412 => ("Precondition failed", Rfc9110 + "15.5.13"),
        413 => ("Content too large", Rfc9110 + "15.5.14"),
        414 => ("URI too long", Rfc9110 + "15.5.15"),
        415 => ("Unsupported media type", Rfc9110 + "15.5.16"),
        429 => ("Too many requests", "https://tools.ietf.org/html/rfc6585#section-4"),
        431 => ("Request header fields too large", "https://tools.ietf.org/html/rfc6585#section-5"),
        499 => ("Client closed request", "about:blank"),
        500 => ("Internal error", Rfc9110 + "15.6.1"),
        502 => ("Bad gateway", Rfc9110 + "15.6.3"),
        503 => ("Service unavailable", Rfc9110 + "15.6.4"),
        _ => (ReasonPhrases.GetReasonPhrase(status) is { Length: > 0 } phrase ? phrase : "Error", "about:blank"),
    };

    /// <summary>
    /// A store that is away is logged without its stack (one line per refused request, the cause's message only: a
    /// database outage refuses every write, and the background jobs log the outage itself), a busy one as before.
    /// </summary>
    private static IResult LogUnavailable(ILogger logger, StoreException exception)
    {
        if (exception is StoreUnavailableException away)
        {
            LogDatabaseAway(logger, away.Database, exception.GetBaseException().Message);
        }
        else
        {
            LogFailure(logger, exception, 503);
        }
        return StoreFailures.Unavailable(exception);
    }

    [LoggerMessage(EventId = 1001, Level = LogLevel.Warning, Message = "request refused with 503: {Database} is unavailable ({Error})")]
    private static partial void LogDatabaseAway(ILogger logger, string database, string error);

    private static IResult LogAndCreate(ILogger logger, Exception exception, int status, string detail)
    {
        LogFailure(logger, exception, status);
        return For(status, detail);
    }

    [LoggerMessage(EventId = 1000, Level = LogLevel.Error, Message = "request failed with {Status}")]
    private static partial void LogFailure(ILogger logger, Exception exception, int status);
}
