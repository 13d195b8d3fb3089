using System.Text.Json;
using Engram.Core.Common;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Http;

/// <summary>
/// Reads request bodies with Engram's JSON contract (snake_case, unknown fields rejected). Failures
/// throw <see cref="JsonException"/> / <see cref="ValidationException"/>, which <see cref="Problems"/>
/// turns into 400 problem bodies; a body that is not JSON at all gets 415.
/// </summary>
internal static class JsonBody
{
    public static async Task<T> ReadAsync<T>(HttpRequest request, CancellationToken ct) where T : class
    {
        if (request.ContentType is { } type && !type.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            throw new BadHttpRequestException($"the body must be JSON (Content-Type: application/json), not {type}", StatusCodes.Status415UnsupportedMediaType);
        }
        T? value;
        try
        {
            value = await JsonSerializer.DeserializeAsync<T>(request.Body, EngramJson.Options, ct);
        }
        catch (JsonException ex) when (ex.Path is "$" && ex.LineNumber == 0 && ex.BytePositionInLine == 0 && request.ContentLength is 0 or null)
        {
            throw new ValidationException("body", "a JSON body is required");
        }
        return value ?? throw new ValidationException("body", "the body must be a JSON object, not null");
    }
}
