using System.Text.Json;
using Engram.Core.Common;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Server.Http;

/// <summary>
/// Reads request bodies with Engram's JSON contract (snake_case, unknown and duplicate fields rejected,
/// strings no longer than a field takes). Failures throw <see cref="JsonException"/> /
/// <see cref="ValidationException"/>, which <see cref="Problems"/> turns into 400 problem bodies; a body
/// that is not JSON gets 415, one over the route's bound (<see cref="RequestBodyLimits"/>) 413.
/// <para>
/// The body is read whole (<see cref="BodyBytes"/>) and parsed from there, not streamed through
/// <see cref="JsonSerializer.DeserializeAsync{TValue}(Stream, JsonSerializerOptions?, CancellationToken)"/>:
/// that rents a buffer from the shared array pool that grows to the largest token and goes back to the
/// pool, where a 60 MB one stays resident.
/// </para>
/// </summary>
internal static class JsonBody
{
    public static Task<T> ReadAsync<T>(HttpRequest request, BodySize size, CancellationToken ct) where T : class =>
        ReadAsync<T>(request, size, null, ct);

    /// <param name="json">A contract other than Engram's (a body in another API's shape, e.g. a Telegram update); null: Engram's.</param>
    public static async Task<T> ReadAsync<T>(HttpRequest request, BodySize size, JsonSerializerOptions? json, CancellationToken ct) where T : class
    {
        JsonMediaType.Require(request.ContentType);
        var limits = request.HttpContext.RequestServices.GetRequiredService<RequestBodyLimits>();
        var body = await ReadBoundedAsync(request, limits.For(size), size, ct);
        if (body.Length == 0)
        {
            throw new ValidationException("body", "a JSON body is required");
        }
        T? value;
        try
        {
            value = Deserialize<T>(body, json ?? limits.Json);
        }
        catch (JsonException)
        {
            RefusedBodyMemory.Refused(body.Length);
            throw;
        }
        catch (ArgumentException) when (typeof(System.Text.Json.Nodes.JsonNode).IsAssignableFrom(typeof(T)))
        {
            // A JsonObject refuses a field written twice with ArgumentException (typed bodies with a JsonException).
            RefusedBodyMemory.Refused(body.Length);
            throw new ValidationException("body", "the body has a field written twice; write each field once");
        }
        return value ?? throw new ValidationException("body", "the body must be a JSON object, not null");
    }

    private static T? Deserialize<T>(BodyBytes body, JsonSerializerOptions options)
    {
        if (body.IsSingleSegment)
        {
            return JsonSerializer.Deserialize<T>(body.Span, options);
        }
        var reader = new Utf8JsonReader(body.Sequence(), new JsonReaderOptions
        {
            MaxDepth = options.MaxDepth,
            AllowTrailingCommas = options.AllowTrailingCommas,
            CommentHandling = options.ReadCommentHandling,
        });
        var value = JsonSerializer.Deserialize<T>(ref reader, options);
        // Whatever follows the value must be white space: Read throws on anything else, as the span overload does.
        return reader.Read() ? throw new JsonException("the body holds more than one JSON value") : value;
    }

    /// <summary>The whole body, refused with 413 past <paramref name="limit"/> bytes whether or not a Content-Length announced it.</summary>
    private static async Task<BodyBytes> ReadBoundedAsync(HttpRequest request, long limit, BodySize size, CancellationToken ct)
    {
        var feature = request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>();
        if (feature is { IsReadOnly: false })
        {
            // Kestrel enforces it too, so a chunked body stops being read once it passes the bound.
            feature.MaxRequestBodySize = limit;
        }
        if (request.ContentLength is { } announced && announced > limit)
        {
            throw TooLarge(limit, size);
        }
        long held = 0;
        try
        {
            return await BodyBytes.ReadAsync(request.Body, request.ContentLength, limit, read =>
            {
                held = read;
                return TooLarge(limit, size);
            }, ct);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            RefusedBodyMemory.Refused(Math.Max(held, limit));
            throw held > 0 ? ex : TooLarge(limit, size);
        }
        catch (IOException ex) when (ex is not BadHttpRequestException)
        {
            throw Unreadable(ex);
        }
    }

    /// <summary>
    /// A body the transport could not read is the client's fault: Kestrel throws a plain IOException for some framing
    /// errors (a chunk size past 64 bits: "Bad chunk size data.", an OverflowException inside), which was a 500.
    /// </summary>
    internal static BadHttpRequestException Unreadable(IOException exception) =>
        new($"the request body could not be read: {exception.Message}", StatusCodes.Status400BadRequest, exception);

    private static BadHttpRequestException TooLarge(long limit, BodySize size) =>
        new($"the request body is larger than {limit} bytes, the bound of this route (raise it with {RequestBodyLimits.SettingFor(size)})",
            StatusCodes.Status413PayloadTooLarge);
}
