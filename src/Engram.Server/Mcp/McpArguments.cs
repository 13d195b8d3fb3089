using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Server.Mcp;

/// <summary>Tool arguments that need more than binding to a parameter: partial updates.</summary>
internal static class McpArguments
{
    /// <summary>Arguments of memory_update that are not fields of the patch.</summary>
    private static readonly HashSet<string> NotPatchFields = ["id", "expected_version", "user_id", "agent_id", "session_id", "namespace"];

    /// <summary>
    /// The patch of memory_update, read as the REST PATCH body is (<see cref="MemoryPatch"/>): an argument
    /// left out stays, null clears. Refuses a call that changes nothing, which is always a mistake.
    /// </summary>
    public static MemoryPatch Patch(IDictionary<string, JsonElement>? arguments)
    {
        var fields = (arguments ?? new Dictionary<string, JsonElement>()).Where(a => !NotPatchFields.Contains(a.Key)).ToDictionary();
        if (fields.Count == 0)
        {
            throw new ArgumentException("memory_update needs at least one field to change: content, type, tier, importance, valence, tags, entities, " +
                "metadata, source, ttl_seconds, expires_at, valid_from or valid_to");
        }
        return JsonSerializer.Deserialize<MemoryPatch>(JsonSerializer.SerializeToUtf8Bytes(fields), McpResults.Json)!;
    }
}
