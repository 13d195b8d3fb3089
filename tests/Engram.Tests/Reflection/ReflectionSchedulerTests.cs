using System.Net.Http.Json;
using Engram.Core;
using Engram.Core.Llm;
using Engram.Core.Reflection;
using Engram.Server;
using Engram.Server.Jobs;
using Engram.Tests.Support;
using FluentAssertions;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit;

namespace Engram.Tests.Reflection;

/// <summary>The scheduled reflection run: on by default only with a model, and what it writes when it ticks; the settings' checks.</summary>
public sealed class ReflectionSchedulerTests
{
    /// <summary>Real time, with every timer's period divided by 600 (a minute becomes 100 ms).</summary>
    private sealed class FastTimers : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            System.CreateTimer(callback, state, Scale(dueTime), Scale(period));

        private static TimeSpan Scale(TimeSpan t) => t == Timeout.InfiniteTimeSpan || t == TimeSpan.Zero ? t : TimeSpan.FromTicks(Math.Max(1, t.Ticks / 600));
    }

    [Fact]
    public void The_schedule_is_on_by_default_only_with_a_model_and_the_setting_decides_otherwise()
    {
        using var model = new LlmAccess(new LanguageModel(new LlmOptions { BaseUrl = "http://127.0.0.1:9/v1", Model = "m" }));
        ReflectionScheduler.IsOn(new ReflectionOptions(), LlmAccess.None).Should().BeFalse();
        ReflectionScheduler.IsOn(new ReflectionOptions(), model).Should().BeTrue();
        ReflectionScheduler.IsOn(new ReflectionOptions { Enabled = true }, LlmAccess.None).Should().BeTrue("duplicates are flagged on a schedule without a model");
        ReflectionScheduler.IsOn(new ReflectionOptions { Enabled = false }, model).Should().BeFalse();
    }

    [Fact]
    public void Settings_out_of_range_are_refused_naming_the_setting()
    {
        new ReflectionOptions().Validate().Should().BeEmpty();
        new ReflectionOptions { DuplicateThreshold = 1.5 }.Validate().Should().ContainSingle().Which.Should().Contain("Engram:Reflect:DuplicateThreshold");
        new ReflectionOptions { IntervalMinutes = 0 }.Validate().Should().ContainSingle().Which.Should().Contain("Engram:Reflect:IntervalMinutes");
        var options = new EngramServerOptions();
        options.Reflect.MaxMemoriesPerScope = 0;
        options.Validate().Should().Contain(e => e.Contains("Engram:Reflect:MaxMemoriesPerScope", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_tick_with_a_model_writes_the_reflections_of_every_changed_scope()
    {
        await using var model = await FakeChatModel.StartAsync();
        model.Responder = r => r.AllText.Contains("higher-level insights", StringComparison.Ordinal)
            ? FakeReply.Json(new { reflections = new[] { new { content = "Carol plans her week on Sundays", derived_from = new[] { 1, 2 }, importance = 0.5 } } })
            : FakeReply.Text("unexpected");
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Llm.BaseUrl = model.BaseUrl;
            o.Llm.Model = "fake";
            o.Reflect.Enabled = false; // the server's own schedule stays off: this test ticks its own
        });
        await server.CreateAsync(new { content = "Carol writes her weekly plan every Sunday evening", user_id = "carol" });
        await server.CreateAsync(new { content = "Carol reviews last week's goals before planning", user_id = "carol" });

        var settings = new EngramServerOptions();
        settings.Reflect.IntervalMinutes = 1;
        var scheduler = new ReflectionScheduler(server.Services.GetRequiredService<ReflectionService>(), server.Services.GetRequiredService<EngramEngine>(),
            Options.Create(settings), new FastTimers(), NullLogger<ReflectionScheduler>.Instance);
        await scheduler.StartAsync(CancellationToken.None);
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            List<string?> reflections = [];
            while (DateTime.UtcNow < deadline)
            {
                var list = await server.Client.GetFromJsonAsync<System.Text.Json.JsonElement>("/v1/memories?type=reflection&user_id=carol");
                reflections = [.. list.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString())];
                if (reflections.Count > 0)
                {
                    break;
                }
                await Task.Delay(100);
            }
            reflections.Should().Equal("Carol plans her week on Sundays");
        }
        finally
        {
            await scheduler.StopAsync(CancellationToken.None);
        }
        // Later ticks found nothing new: still one reflection, and the model was asked once.
        model.Requests.Count(r => r.AllText.Contains("higher-level insights", StringComparison.Ordinal)).Should().Be(1);
    }
}
