using System.Text.Json;
using Engram.Core.Common;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Engram.Server.Http;

/// <summary>
/// Reads request bodies with Engram's JSON contract (snake_case, unknown and duplicate fields rejected).
/// Failures throw <see cref="JsonException"/> / <see cref="ValidationException"/>, which <see cref="Problems"/>
/// turns into 400 problem bodies; a body that is not JSON gets 415, one over the route's bound 413.
/// <para>
/// The body is read into one array of its own size and parsed from there, not streamed through
/// <see cref="JsonSerializer.DeserializeAsync{TValue}(Stream, JsonSerializerOptions?, CancellationToken)"/>:
/// that rents a buffer from the shared array pool that grows to the largest token and goes back to the
/// pool, where a 60 MB one stays resident. An array of our own is garbage once the request ends, and the
/// route's bound caps it.
/// </para>
/// </summary>
internal static class JsonBody
{
    private const int ChunkBytes = 16 * 1024;

    public static async Task<T> ReadAsync<T>(HttpRequest request, BodySize size, CancellationToken ct) where T : class
    {
        JsonMediaType.Require(request.ContentType);
        var limits = request.HttpContext.RequestServices.GetRequiredService<RequestBodyLimits>();
        var (body, length) = await ReadBoundedAsync(request, limits.For(size), size, ct);
        if (length == 0)
        {
            throw new ValidationException("body", "a JSON body is required");
        }
        var value = JsonSerializer.Deserialize<T>(body.AsSpan(0, length), limits.Json);
        return value ?? throw new ValidationException("body", "the body must be a JSON object, not null");
    }

    /// <summary>The whole body, refused with 413 past <paramref name="limit"/> bytes whether or not a Content-Length announced it.</summary>
    private static async Task<(byte[] Body, int Length)> ReadBoundedAsync(HttpRequest request, long limit, BodySize size, CancellationToken ct)
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
        try
        {
            if (request.ContentLength is { } known)
            {
                var exact = GC.AllocateUninitializedArray<byte>((int)known);
                var filled = 0;
                while (filled < exact.Length)
                {
                    var read = await request.Body.ReadAsync(exact.AsMemory(filled), ct);
                    if (read == 0)
                    {
                        break;
                    }
                    filled += read;
                }
                return (exact, filled);
            }
            return await ReadChunkedAsync(request.Body, limit, size, ct);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw TooLarge(limit, size);
        }
    }

    private static async Task<(byte[] Body, int Length)> ReadChunkedAsync(Stream body, long limit, BodySize size, CancellationToken ct)
    {
        var buffer = GC.AllocateUninitializedArray<byte>(ChunkBytes);
        var length = 0;
        while (true)
        {
            if (length == buffer.Length)
            {
                if (length > limit)
                {
                    throw TooLarge(limit, size);
                }
                var grown = GC.AllocateUninitializedArray<byte>((int)Math.Min((long)buffer.Length * 2, limit + 1));
                buffer.AsSpan(0, length).CopyTo(grown);
                buffer = grown;
            }
            var read = await body.ReadAsync(buffer.AsMemory(length), ct);
            if (read == 0)
            {
                return length > limit ? throw TooLarge(limit, size) : (buffer, length);
            }
            length += read;
        }
    }

    private static BadHttpRequestException TooLarge(long limit, BodySize size) =>
        new($"the request body is larger than {limit} bytes, the bound of this route (raise it with {RequestBodyLimits.SettingFor(size)})",
            StatusCodes.Status413PayloadTooLarge);
}
