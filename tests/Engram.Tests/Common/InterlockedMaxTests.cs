using Engram.Core.Common;

namespace Engram.Tests.Common;

public sealed class InterlockedMaxTests
{
    [Fact]
    public void Concurrent_raises_leave_the_highest_value_and_only_a_higher_value_moves_it()
    {
        long position = 10;
        InterlockedMax.Raise(ref position, 5).Should().BeFalse("a lower value never moves it back");
        position.Should().Be(10);

        var values = Enumerable.Range(0, 200_000).Select(i => (long)((i * 7919L) % 1_000_003)).ToArray();
        var moved = 0;
        Parallel.ForEach(System.Collections.Concurrent.Partitioner.Create(0, values.Length, 1_000), range =>
        {
            for (var i = range.Item1; i < range.Item2; i++)
            {
                if (InterlockedMax.Raise(ref position, values[i]))
                {
                    Interlocked.Increment(ref moved);
                }
            }
        });

        position.Should().Be(values.Max());
        moved.Should().BeGreaterThan(0);
        InterlockedMax.Raise(ref position, values.Max()).Should().BeFalse("an equal value is not a move");
    }
}
