using Engram.Core.Storage.Sqlite;
using FluentAssertions;
using Xunit;

namespace Engram.Tests.KeyValue;

/// <summary>The key filter: never "no" for a key added, rarely "maybe" for one not added, full past its capacity.</summary>
public class KvKeyFilterTests
{
    [Fact]
    public void Every_key_added_is_held_and_few_others_seem_to_be()
    {
        var filter = new KvKeyFilter(100_000);
        var keys = Enumerable.Range(0, (int)filter.Capacity).Select(i => $"swarm:acme:task:{i}").ToList();
        foreach (var key in keys)
        {
            filter.Add("acme", key);
        }
        keys.Should().OnlyContain(k => filter.MayContain("acme", k));
        filter.Full.Should().BeFalse("it holds its capacity");

        var others = Enumerable.Range(0, 100_000).Select(i => $"swarm:acme:task:x{i}").Count(k => filter.MayContain("acme", k));
        others.Should().BeLessThan(500, "about 1 in 1,000 unknown keys seems held at capacity");
        filter.MayContain("globex", keys[0]).Should().BeFalse("the tenant is part of the key");

        filter.Add("acme", "one more");
        filter.Full.Should().BeTrue();
    }

    [Fact]
    public void A_key_hashes_alike_from_a_string_and_from_its_characters()
    {
        var filter = new KvKeyFilter(10);
        filter.Add(KvKeyFilter.Hash("t", "app:t:session:1"));
        filter.MayContain("t", "app:t:session:1".AsSpan()).Should().BeTrue();
        filter.MayContain("t", "app:t:session:2".AsSpan()).Should().BeFalse();
    }
}
