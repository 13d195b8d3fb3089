using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Configuration;

namespace Engram.Server.Http;

/// <summary>What a route's body may weigh (see <see cref="RequestBodyLimits"/>).</summary>
internal enum BodySize
{
    /// <summary>A few fields: incr, expire, cleanup.</summary>
    Small,

    /// <summary>One memory or one search: create, update, search.</summary>
    Memory,

    /// <summary>One key-value SET: a value up to Engram:KeyValue:MaxValueBytes.</summary>
    KeyValue,

    /// <summary>Many items: memories/batch, kv mset and mget, graph calls.</summary>
    Batch,
}

/// <summary>
/// Request body bounds per kind of route, in bytes, from the configured limits. A 60 MB body sent to a
/// route that stores one memory is refused with 413 before it is read (Content-Length) or as soon as it
/// passes the bound (chunked), instead of being parsed whole before the content limit applies.
/// </summary>
internal sealed class RequestBodyLimits
{
    public RequestBodyLimits(EngramServerOptions options)
    {
        Memory = options.Limits.SingleRequestBodyBytes();
        Small = Math.Min(MemoryLimits.MinRequestBodyBytes, Memory);
        KeyValue = Math.Max(Memory, options.KeyValue.MaxValueBytes + 16L * 1024);
        Batch = Math.Max(options.Limits.MaxBatchRequestBodyBytes, Memory);
        // The longest string a request may carry: a content, or a search query (8,192 characters).
        var longestString = Math.Max(options.Limits.MaxContentChars, 8_192);
        Json = new JsonSerializerOptions(EngramJson.Options);
        Json.Converters.Add(new BoundedStringConverter(longestString));
        Json.MakeReadOnly();
    }

    /// <summary>Engram's JSON contract for request bodies, with strings bounded while they are parsed.</summary>
    public JsonSerializerOptions Json { get; }

    public long Small { get; }

    public long Memory { get; }

    public long KeyValue { get; }

    public long Batch { get; }

    public long For(BodySize size) => size switch
    {
        BodySize.Small => Small,
        BodySize.Memory => Memory,
        BodySize.KeyValue => KeyValue,
        _ => Batch,
    };

    /// <summary>The setting that raises the bound of <paramref name="size"/>, for the 413 message.</summary>
    public static string SettingFor(BodySize size) => size switch
    {
        BodySize.Small or BodySize.Memory => "Engram:Limits:MaxRequestBodyBytes",
        BodySize.KeyValue => "Engram:KeyValue:MaxValueBytes",
        _ => "Engram:Limits:MaxBatchRequestBodyBytes",
    };
}
