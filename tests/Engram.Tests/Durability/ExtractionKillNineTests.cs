using System.Net;
using System.Text;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Durability;

/// <summary>
/// A real server (child process) killed with SIGKILL while its extraction job waits for the model, then started again:
/// the conversation and its job survive, the job is taken over once its lease runs out, and its memories are written once.
/// (A job killed after its plan was saved resumes without the model: ExtractionTests, in process, on both backends.)
/// </summary>
[Trait("Category", "Durability")]
public sealed class ExtractionKillNineTests
{
    private static readonly TimeSpan HealthTimeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_server_killed_mid_job_resumes_the_job_after_a_restart_and_writes_its_memories_once()
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return; // SIGKILL
        }
        await using var model = await FakeChatModel.StartAsync();
        var facts = JsonSerializer.Serialize(new { facts = new[] { new { text = "Lives in Berlin" }, new { text = "Likes green tea" } } });
        // The first answer is held long enough for the kill; the one after the restart comes at once.
        model.Enqueue(FakeReply.Text(facts) with { Delay = TimeSpan.FromMinutes(2) });
        model.Responder = _ => FakeReply.Text(facts);
        var environment = new Dictionary<string, string>
        {
            ["LLM_BASE_URL"] = model.BaseUrl,
            ["LLM_MODEL"] = "fake",
            ["Engram__Llm__ExtractionLeaseSeconds"] = "2",
        };
        using var data = new TempDirectory();
        string jobId;
        await using (var first = await EngramChildProcess.StartAsync(data.Path, HealthTimeout, environment))
        {
            using var client = new HttpClient { BaseAddress = first.BaseAddress };
            using var accepted = await client.PostAsync("/v1/memories", new StringContent(
                """{"messages":[{"role":"user","content":"I live in Berlin and I like green tea"}],"user_id":"alice"}""", Encoding.UTF8, "application/json"));
            accepted.StatusCode.Should().Be(HttpStatusCode.Accepted);
            jobId = (await accepted.JsonAsync()).GetProperty("job_id").GetString()!;
            for (var i = 0; i < 300 && model.Requests.Count == 0; i++)
            {
                await Task.Delay(100);
            }
            model.Requests.Should().HaveCount(1, "the job is waiting for the model");
            (await first.KillNineAsync()).Should().Be(EngramChildProcess.SigKillExitCode);
        }

        await using var second = await EngramChildProcess.StartAsync(data.Path, HealthTimeout, environment);
        using var again = new HttpClient { BaseAddress = second.BaseAddress };
        JsonElement job = default;
        for (var i = 0; i < 600; i++)
        {
            job = await (await again.GetAsync($"/v1/jobs/{jobId}")).JsonAsync();
            if (job.GetProperty("status").GetString() is "succeeded" or "failed")
            {
                break;
            }
            await Task.Delay(100);
        }
        job.GetProperty("status").GetString().Should().Be("succeeded", job.GetRawText());
        job.GetProperty("attempts").GetInt32().Should().Be(2, "taken by the killed server, then taken over after its lease ran out");
        job.GetProperty("input").GetProperty("conversation").GetProperty("messages")[0].GetProperty("content").GetString()
            .Should().Be("I live in Berlin and I like green tea");
        var items = (await (await again.GetAsync("/v1/memories?user_id=alice")).JsonAsync()).GetProperty("items").EnumerateArray()
            .Select(m => m.GetProperty("content").GetString()).ToList();
        items.Should().BeEquivalentTo(["Lives in Berlin", "Likes green tea"]);
        model.Requests.Should().HaveCount(2);
    }
}
