using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Server.Mcp;

/// <summary>Tool arguments that are words with a fixed set of values, parsed with the REST API's messages.</summary>
internal static class McpArguments
{
    public static DuplicatePolicy OnDuplicate(string? value) => value switch
    {
        null or "return" => DuplicatePolicy.Return,
        "reject" => DuplicatePolicy.Reject,
        "allow" => DuplicatePolicy.Allow,
        _ => throw new ValidationException("on_duplicate", $"on_duplicate must be return, reject or allow (got '{value}')"),
    };
}
