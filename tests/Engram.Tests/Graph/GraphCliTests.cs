using Engram.Tests.Cli;

namespace Engram.Tests.Graph;

/// <summary><c>engram graph …</c> end to end, once in process (--data) and once against a server (--server).</summary>
public sealed class GraphCliTests
{
    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    [InlineData(CliMode.InProcessPostgres)]
    public async Task Graph_commands_round_trip(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);

        var created = await engram.JsonAsync("graph", "add-entity", "Ada Lovelace", "--type", "person", "--obs", "wrote the first program", "--obs", "born in London");
        created.GetProperty("entities")[0].GetProperty("observations").GetArrayLength().Should().Be(2);
        (await engram.JsonAsync("graph", "add-entity", "Ada Lovelace", "--type", "robot")).GetProperty("entities").GetArrayLength().Should().Be(0);
        await engram.JsonAsync("graph", "add-entity", "Analytical Engine", "--type", "machine");
        await engram.JsonAsync("graph", "add-entity", "Babbage", "--type", "person");

        var related = await engram.JsonAsync("graph", "relate", "Ada Lovelace", "programmed", "Analytical Engine", "--weight", "0.9");
        related.GetProperty("relations")[0].GetProperty("weight").GetDouble().Should().Be(0.9);
        await engram.JsonAsync("graph", "relate", "Babbage", "designed", "Analytical Engine");
        var added = await engram.JsonAsync("graph", "observe", "Babbage", "mathematician", "inventor");
        added.GetProperty("results")[0].GetProperty("added_observations").GetArrayLength().Should().Be(2);

        var text = await engram.RunAsync("graph", "show");
        text.ExitCode.Should().Be(0, text.ToString());
        text.Stdout.Should().Contain("Ada Lovelace (person)").And.Contain("  - born in London").And.Contain("Babbage -[designed]-> Analytical Engine");

        var opened = await engram.JsonAsync("graph", "show", "Ada Lovelace", "Analytical Engine");
        opened.GetProperty("entities").GetArrayLength().Should().Be(2);
        opened.GetProperty("relations").GetArrayLength().Should().Be(1);

        var found = await engram.JsonAsync("graph", "search", "inventor");
        found.GetProperty("entities").EnumerateArray().Select(e => e.GetProperty("name").GetString()).Should().Equal("Babbage");

        var neighbors = await engram.JsonAsync("graph", "neighbors", "Ada Lovelace", "--depth", "2");
        neighbors.GetProperty("entities").GetArrayLength().Should().Be(3);
        var cut = await engram.JsonAsync("graph", "neighbors", "Ada Lovelace", "--depth", "2", "--limit", "1");
        (cut.GetProperty("entities").GetArrayLength(), cut.GetProperty("truncated").GetBoolean()).Should().Be((2, true));
        var cutText = await engram.RunAsync("graph", "neighbors", "Ada Lovelace", "--depth", "2", "--limit", "1");
        cutText.Stdout.Should().Contain("(cut at 1 entities besides the start", cutText.ToString());
        (await engram.RunAsync("graph", "neighbors", "Ada Lovelace", "--limit", "0")).ExitCode.Should().NotBe(0);

        var path = await engram.JsonAsync("graph", "path", "Ada Lovelace", "Babbage");
        path.GetProperty("entities").EnumerateArray().Select(e => e.GetProperty("name").GetString()).Should().Equal("Ada Lovelace", "Analytical Engine", "Babbage");

        (await engram.JsonAsync("graph", "delete-entity", "Analytical Engine")).GetProperty("deleted").GetInt32().Should().Be(1);
        var noPath = await engram.RunAsync("graph", "path", "Ada Lovelace", "Babbage");
        noPath.ExitCode.Should().Be(1, noPath.ToString());
        noPath.Stderr.Should().StartWith("engram: no path");
        (await engram.JsonAsync("graph", "show")).GetProperty("relations").GetArrayLength().Should().Be(0);

        var missing = await engram.RunAsync("graph", "relate", "Ada Lovelace", "knows", "Nobody");
        missing.ExitCode.Should().Be(1, missing.ToString());
        missing.Stderr.Should().Contain("Nobody");
    }
}
