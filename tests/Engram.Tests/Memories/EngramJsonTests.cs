using System.Text.Json;
using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Tests.Memories;

public sealed class EngramJsonTests
{
    [Fact]
    public void Patch_WritesOnlyPresentFields_AndNullForCleared()
    {
        var patch = new MemoryPatch { Importance = 0.5, Valence = new Optional<double?>(null) };
        var json = JsonSerializer.Serialize(patch, EngramJson.Options);
        json.Should().Be("""{"importance":0.5,"valence":null}""");
        var back = JsonSerializer.Deserialize<MemoryPatch>(json, EngramJson.Options)!;
        back.Importance.HasValue.Should().BeTrue();
        back.Valence.HasValue.Should().BeTrue();
        back.Valence.Value.Should().BeNull();
        back.Content.HasValue.Should().BeFalse();
    }

    [Fact]
    public void Timestamps_AreUtcWithMillisecondsAndZ()
    {
        var value = new DateTimeOffset(2026, 1, 2, 3, 4, 5, 678, TimeSpan.FromHours(2));
        JsonSerializer.Serialize(value, EngramJson.Options).Should().Be("\"2026-01-02T01:04:05.678Z\"");
    }
}
