using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Tests.Support;

/// <summary>Memories built as the service would hand them to a store (id, hash, defaults), for tests that write to a store directly.</summary>
public static class TestMemories
{
    public static Memory New(string content)
    {
        var now = DateTimeOffset.UtcNow;
        return new Memory
        {
            Id = Ulid.NewUlid(now),
            Tags = [],
            Entities = [],
            Content = content,
            ContentHash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(content))),
            Type = "fact",
            Tier = MemoryTier.LongTerm,
            Importance = 0.5,
            Metadata = JsonDocument.Parse("{}").RootElement.Clone(),
            CreatedAt = now,
            UpdatedAt = now,
            Version = 1,
        };
    }
}
