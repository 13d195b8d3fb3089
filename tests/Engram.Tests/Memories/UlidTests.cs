using Engram.Core.Common;

namespace Engram.Tests.Memories;

public sealed class UlidTests
{
    [Fact]
    public void NewUlid_IsValidAndStrictlyIncreasingWithinOneMillisecond()
    {
        var now = DateTimeOffset.UtcNow;
        var ids = Enumerable.Range(0, 10_000).Select(_ => Ulid.NewUlid(now)).ToList();
        ids.Should().OnlyContain(id => Ulid.IsValid(id));
        ids.Should().BeInAscendingOrder(StringComparer.Ordinal);
        ids.Should().OnlyHaveUniqueItems();
    }

    [Fact]
    public void NewUlid_SortsByTime()
    {
        var earlier = Ulid.NewUlid(DateTimeOffset.UtcNow.AddDays(1));
        var later = Ulid.NewUlid(DateTimeOffset.UtcNow.AddDays(2));
        string.CompareOrdinal(earlier, later).Should().BeNegative();
        earlier[..10].Should().NotBe(later[..10]);
    }

    [Theory]
    [InlineData("01ARZ3NDEKTSV4RRFFQ69G5FAV", true)]
    [InlineData("01ARZ3NDEKTSV4RRFFQ69G5FA", false)]
    [InlineData("01ARZ3NDEKTSV4RRFFQ69G5FAI", false)] // I is not Crockford base32
    [InlineData("81ARZ3NDEKTSV4RRFFQ69G5FAV", false)] // overflows 48-bit time
    public void IsValid(string text, bool valid) => Ulid.IsValid(text).Should().Be(valid);
}
