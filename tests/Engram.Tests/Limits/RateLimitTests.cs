using System.Net;
using Engram.Server.Http;
using Engram.Tests.Support;

namespace Engram.Tests.Limits;

/// <summary>Per-caller rate and concurrency limits over the real server (Engram:RateLimit).</summary>
public sealed class RateLimitTests
{
    [Fact]
    public async Task AnEmptyBucket_Is429WithRetryAfter_WhileProbesAndOtherClientsAreServed()
    {
        // One request per 100 s with a burst of 2: the third request within the test is refused, however slow the machine.
        await using var server = await EngramServer.StartAsync(configure: o =>
            o.RateLimit = new RateLimitOptions { PermitsPerSecond = 0.01, Burst = 2, MaxConcurrentRequests = 0 });

        (await server.Client.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await server.Client.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
        var refused = await server.Client.GetAsync("/v1/stats");
        var problem = await refused.ShouldBeProblemAsync(HttpStatusCode.TooManyRequests);
        problem.GetProperty("detail").GetString().Should().Contain("Engram:RateLimit");
        var retryAfter = refused.Headers.RetryAfter?.Delta;
        retryAfter.Should().NotBeNull("a 429 says when to come back");
        retryAfter!.Value.Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(1)).And.BeLessThanOrEqualTo(TimeSpan.FromSeconds(100));

        // Writes are refused alike, before the endpoint runs: nothing is stored.
        await (await server.PostJsonAsync("/v1/memories", """{"content":"refused by the limiter"}""")).ShouldBeProblemAsync(HttpStatusCode.TooManyRequests);

        // The probes answer an orchestrator whatever a client does.
        (await server.Client.GetAsync("/health/live")).StatusCode.Should().Be(HttpStatusCode.OK);
        (await server.Client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK);

        // Another client (another address) has a bucket of its own.
        using var other = LimitsClients.From(IPAddress.Parse("127.0.0.2"), server.BaseAddress);
        (await other.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task RequestsInFlightPastTheLimit_Are429_AndTheSlotFreesWhenOneEnds()
    {
        await using var server = await EngramServer.StartAsync(configure: o =>
            o.RateLimit = new RateLimitOptions { PermitsPerSecond = 0, MaxConcurrentRequests = 1, QueueLimit = 0 });

        // Hold one request in flight: its body arrives in two halves, the second only when released. A probe that reaches
        // the limiter first holds the one slot for a moment, and the held request arriving then is refused itself (the
        // limit doing its job): the probes then all pass, and the scenario starts again.
        HttpResponseMessage? refused = null;
        HeldJsonContent held = null!;
        Task<HttpResponseMessage> first = null!;
        for (var scenario = 1; refused is null; scenario++)
        {
            held = new HeldJsonContent("""{"content":"a memory whose body arrives slowly"}""");
            first = server.Client.PostAsync("/v1/memories", held);
            await held.Started;
            await Task.Delay(200 * scenario); // the held request's headers are on their way: let them reach the limiter first
            for (var attempt = 0; attempt < 500 && refused is null; attempt++) // up to ~10 s: on a loaded machine the held request may take a while to reach the limiter
            {
                var probe = await server.Client.GetAsync("/v1/stats");
                if (probe.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    refused = probe;
                }
                else
                {
                    probe.StatusCode.Should().Be(HttpStatusCode.OK); // the held request has not reached the limiter yet
                    await Task.Delay(20);
                }
            }
            if (refused is null)
            {
                held.Release();
                try
                {
                    // Refused before its body was read: 429, or the connection closed under the rest of the body.
                    (await first).StatusCode.Should().Be(HttpStatusCode.TooManyRequests,
                        "a second request while one is in flight exceeds MaxConcurrentRequests = 1; when no probe was refused, the held request was");
                }
                catch (HttpRequestException)
                {
                }
                scenario.Should().BeLessThan(3, "the held request lost the race to a probe three times");
            }
        }
        var problem = await refused!.ShouldBeProblemAsync(HttpStatusCode.TooManyRequests);
        problem.GetProperty("detail").GetString().Should().Contain("in flight");
        refused!.Headers.RetryAfter?.Delta.Should().Be(TimeSpan.FromSeconds(1));

        held.Release();
        (await first).StatusCode.Should().Be(HttpStatusCode.Created);
        (await server.Client.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task ZeroTurnsTheLimitsOff()
    {
        await using var server = await EngramServer.StartAsync(configure: o =>
            o.RateLimit = new RateLimitOptions { PermitsPerSecond = 0, Burst = 1, MaxConcurrentRequests = 0 });
        for (var i = 0; i < 20; i++)
        {
            (await server.Client.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
        }
    }
}

/// <summary>Who a request counts against (the gate is another part of issue 11; its caller feature is set by hand here).</summary>
public sealed class RateLimitPartitionTests
{
    [Fact]
    public void AKeyedCallerIsCountedByItsKey_WhateverItsAddress()
    {
        var fromHome = Context("10.0.0.1", keyId: "key-a");
        var fromOffice = Context("10.0.0.2", keyId: "key-a");
        var otherKey = Context("10.0.0.1", keyId: "key-b");

        RateLimits.ClientKey.Of(fromHome).Should().Be(RateLimits.ClientKey.Of(fromOffice));
        RateLimits.ClientKey.Of(otherKey).Should().NotBe(RateLimits.ClientKey.Of(fromHome));
    }

    [Fact]
    public void WithoutAKey_TheAddressCounts_AnIpv6ClientByItsSlash64()
    {
        RateLimits.ClientKey.Of(Context("10.0.0.1")).Should().NotBe(RateLimits.ClientKey.Of(Context("10.0.0.2")));
        RateLimits.ClientKey.Of(Context("::ffff:10.0.0.1")).Should().Be(RateLimits.ClientKey.Of(Context("10.0.0.1")));
        RateLimits.ClientKey.Of(Context("2001:db8:1:2::1")).Should().Be(RateLimits.ClientKey.Of(Context("2001:db8:1:2:ffff::9")));
        RateLimits.ClientKey.Of(Context("2001:db8:1:3::1")).Should().NotBe(RateLimits.ClientKey.Of(Context("2001:db8:1:2::1")));
    }

    private static Microsoft.AspNetCore.Http.DefaultHttpContext Context(string address, string? keyId = null)
    {
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Connection.RemoteIpAddress = IPAddress.Parse(address);
        if (keyId is not null)
        {
            context.Features.Set<ICallerFeature>(new CallerFeature(new Engram.Core.Common.Caller("t", "a", Engram.Core.Security.Role.Read, KeyId: keyId)));
        }
        return context;
    }
}
