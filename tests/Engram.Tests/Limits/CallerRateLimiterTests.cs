using System.Net;
using System.Threading.RateLimiting;
using Engram.Server.Http;

namespace Engram.Tests.Limits;

/// <summary>The per-caller limiter on its own, on a clock the test moves (bucket refills, the idle sweep).</summary>
public sealed class CallerRateLimiterTests
{
    private static readonly RateLimits.ClientKey Alice = new(null, IPAddress.Parse("10.0.0.1"));
    private static readonly RateLimits.ClientKey Bob = new("key-b", null);

    [Fact]
    public async Task The_bucket_gives_its_burst_then_refuses_with_the_wait_for_the_next_token_which_time_brings()
    {
        var clock = new SteppedClock();
        await using var limiter = new CallerRateLimiter(new RateLimitOptions { PermitsPerSecond = 4, Burst = 3, MaxConcurrentRequests = 0 }, clock);

        for (var i = 0; i < 3; i++)
        {
            (await limiter.AcquireAsync(Alice, default)).IsAcquired.Should().BeTrue();
        }
        var refused = await limiter.AcquireAsync(Alice, default);
        refused.IsAcquired.Should().BeFalse();
        refused.TryGetMetadata(MetadataName.RetryAfter, out var wait).Should().BeTrue();
        wait.Should().Be(TimeSpan.FromSeconds(0.25), "one token per 1/4 s");
        (await limiter.AcquireAsync(Bob, default)).IsAcquired.Should().BeTrue("another caller has a bucket of its own");

        clock.Advance(TimeSpan.FromSeconds(0.2));
        (await limiter.AcquireAsync(Alice, default)).IsAcquired.Should().BeFalse("0.8 of a token");
        clock.Advance(TimeSpan.FromSeconds(0.05));
        (await limiter.AcquireAsync(Alice, default)).IsAcquired.Should().BeTrue();
        (await limiter.AcquireAsync(Alice, default)).IsAcquired.Should().BeFalse();

        // A long rest refills up to the burst, not beyond.
        clock.Advance(TimeSpan.FromHours(1));
        for (var i = 0; i < 3; i++)
        {
            (await limiter.AcquireAsync(Alice, default)).IsAcquired.Should().BeTrue();
        }
        (await limiter.AcquireAsync(Alice, default)).IsAcquired.Should().BeFalse();
    }

    [Fact]
    public async Task Requests_in_flight_past_the_bound_queue_then_are_refused_without_a_wait_and_a_released_slot_serves_the_queue()
    {
        await using var limiter = new CallerRateLimiter(new RateLimitOptions { PermitsPerSecond = 0, MaxConcurrentRequests = 1, QueueLimit = 1 }, new SteppedClock());

        var first = await limiter.AcquireAsync(Alice, default);
        first.IsAcquired.Should().BeTrue();
        var queued = limiter.AcquireAsync(Alice, default).AsTask();
        queued.IsCompleted.Should().BeFalse("one in flight: the second waits in the queue");
        var refused = await limiter.AcquireAsync(Alice, default);
        refused.IsAcquired.Should().BeFalse("the queue is full");
        refused.TryGetMetadata(MetadataName.RetryAfter, out _).Should().BeFalse("only the bucket knows when to come back");
        (await limiter.AcquireAsync(Bob, default)).IsAcquired.Should().BeTrue();

        first.Dispose();
        using var second = await queued.WaitAsync(TimeSpan.FromSeconds(30));
        second.IsAcquired.Should().BeTrue();
    }

    [Fact]
    public async Task The_sweep_drops_callers_idle_past_their_refill_but_not_one_with_a_request_in_flight()
    {
        var clock = new SteppedClock();
        await using var limiter = new CallerRateLimiter(new RateLimitOptions { PermitsPerSecond = 1, Burst = 2, MaxConcurrentRequests = 4 }, clock);
        (await limiter.AcquireAsync(Alice, default)).Dispose();
        (await limiter.AcquireAsync(Alice, default)).Dispose();
        var held = await limiter.AcquireAsync(Bob, default);
        limiter.Callers.Should().Be(2);

        clock.Advance(TimeSpan.FromSeconds(2) + CallerRateLimiter.SweepInterval - TimeSpan.FromMilliseconds(1));
        limiter.Sweep();
        limiter.Callers.Should().Be(2, "not idle for the bucket's refill (2 s) and a sweep interval yet");

        clock.Advance(TimeSpan.FromSeconds(1));
        limiter.Sweep();
        limiter.Callers.Should().Be(1, "Alice's bucket refilled long ago; Bob still holds a slot");

        held.Dispose();
        limiter.Sweep();
        limiter.Callers.Should().Be(0);

        // A caller back after the sweep starts with a full bucket: the same as the refilled one it replaced.
        (await limiter.AcquireAsync(Alice, default)).IsAcquired.Should().BeTrue();
        (await limiter.AcquireAsync(Alice, default)).IsAcquired.Should().BeTrue();
        (await limiter.AcquireAsync(Alice, default)).IsAcquired.Should().BeFalse();
    }

    [Fact]
    public async Task No_caller_means_no_limit()
    {
        await using var limiter = new CallerRateLimiter(new RateLimitOptions { PermitsPerSecond = 0.01, Burst = 1, MaxConcurrentRequests = 1, QueueLimit = 0 }, new SteppedClock());
        for (var i = 0; i < 5; i++)
        {
            (await limiter.AcquireAsync(null, default)).IsAcquired.Should().BeTrue();
        }
        limiter.Callers.Should().Be(0);
    }

    /// <summary>Timestamps the test moves by hand (in ticks of 100 ns); timers are the system's.</summary>
    private sealed class SteppedClock : TimeProvider
    {
        private long _now = 1_000_000;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _now);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _now, by.Ticks);
    }
}
