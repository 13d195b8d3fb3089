using System.Text.Json;
using Engram.Core.Security;
using Engram.Tests.Mcp;
using Engram.Tests.Support;
using Xunit.Abstractions;

namespace Engram.Tests.Mem0;

/// <summary>
/// The official mem0 npm clients (tests/node: mem0ai 3.x and the last 2.x, which used the v1/v2 paths) against
/// Engram's mem0-compatible API, driven by tests/node/mem0-client.mjs: every client method, every result checked.
/// </summary>
public sealed class Mem0ClientTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(Backend.Sqlite, "current")]
    [InlineData(Backend.Sqlite, "v1")]
    [InlineData(Backend.Postgres, "current")]
    [InlineData(Backend.Postgres, "v1")]
    public async Task Every_method_of_the_official_client_works_unchanged(Backend backend, string client)
    {
        await using var server = await EngramServer.StartAsync(backend);
        var key = await server.CreateKeyAsync("default", Role.Write, name: "mem0");
        var result = await NodeClients.RunAsync(
            [Path.Combine(NodeClients.NodeFolder, "mem0-client.mjs"), "--url", server.BaseAddress.ToString().TrimEnd('/'), "--key", key, "--client", client],
            NodeClients.NodeFolder, null, TimeSpan.FromMinutes(3));
        output.WriteLine(result.ToString());
        result.ExitCode.Should().Be(0, result.ToString());
        var summary = result.Json();
        summary.GetProperty("ok").GetBoolean().Should().BeTrue();
        var methods = summary.GetProperty("methods").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString());
        methods.Keys.Should().BeEquivalentTo(["constructor", "ping", "add", "search", "getAll", "get", "update", "history", "users", "batchUpdate",
            "batchDelete", "delete", "deleteAll", "deleteUsers"]);
        methods.Values.Should().OnlyContain(v => v == "pass");
        summary.GetProperty("version").GetString().Should().StartWith(client == "v1" ? "2." : "3.");
    }

    [Theory]
    [InlineData(Backend.Sqlite, "current")]
    [InlineData(Backend.Sqlite, "v1")]
    [InlineData(Backend.Postgres, "current")]
    public async Task An_add_with_inference_is_extracted_by_the_model_and_its_event_succeeds(Backend backend, string client)
    {
        await using var model = await FakeChatModel.StartAsync();
        model.Responder = r => r.AllText.Contains("keep a memory store current", StringComparison.Ordinal)
            ? FakeReply.Json(new { decisions = new[] { new { fact = 1, @event = "ADD", memory = (int?)null, reason = "new" }, new { fact = 2, @event = "ADD", memory = (int?)null, reason = "new" } } })
            : FakeReply.Json(new
            {
                facts = new[]
                {
                    new { text = "Is vegetarian", type = "preference", entities = Array.Empty<string>(), importance = 0.8, valence = 0.1 },
                    new { text = "Cooks every Sunday", type = "fact", entities = Array.Empty<string>(), importance = 0.5, valence = 0.3 },
                },
            });
        await using var server = await EngramServer.StartAsync(backend, o =>
        {
            o.Llm.BaseUrl = model.BaseUrl;
            o.Llm.Model = "fake";
        });
        var key = await server.CreateKeyAsync("default", Role.Write, name: "mem0");
        var result = await NodeClients.RunAsync(
            [Path.Combine(NodeClients.NodeFolder, "mem0-infer.mjs"), "--url", server.BaseAddress.ToString().TrimEnd('/'), "--key", key, "--client", client],
            NodeClients.NodeFolder, null, TimeSpan.FromMinutes(3));
        output.WriteLine(result.ToString());
        result.ExitCode.Should().Be(0, result.ToString());
        result.Json().GetProperty("memories").EnumerateArray().Select(m => m.GetString()).Should().Equal("Cooks every Sunday", "Is vegetarian");
        model.Requests.Should().NotBeEmpty("the facts came from the model");
    }
}
