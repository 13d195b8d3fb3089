namespace Engram.Tests.Cli;

/// <summary><c>--entity</c> on add, update, list and search, in process and against a server.</summary>
public sealed class CliEntitiesTests
{
    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    public async Task Add_get_update_and_filter_by_entity(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);

        var added = await engram.JsonAsync("add", "Alice and Bob visited Acme", "--entity", "Alice", "--entity", "Acme, Inc.", "--entity", "alice");
        var id = added.GetProperty("id").GetString()!;
        added.GetProperty("entities").EnumerateArray().Select(e => e.GetString()).Should().Equal("Alice", "Acme, Inc.");
        await engram.JsonAsync("add", "Bob alone", "--entity", "Bob");

        var shown = await engram.RunAsync("get", id);
        shown.ExitCode.Should().Be(0, shown.ToString());
        shown.Stdout.Should().Contain("entities:").And.Contain("Alice; Acme, Inc.");

        static List<string?> Contents(System.Text.Json.JsonElement page) =>
            page.GetProperty("items").EnumerateArray().Select(m => m.GetProperty("content").GetString()).ToList();
        Contents(await engram.JsonAsync("list", "--entity", "ACME, INC.")).Should().Equal("Alice and Bob visited Acme");
        Contents(await engram.JsonAsync("list", "--entity", "bob")).Should().Equal("Bob alone");

        var updated = await engram.JsonAsync("update", id, "--entity", "Bob");
        updated.GetProperty("entities").EnumerateArray().Select(e => e.GetString()).Should().Equal("Bob");
        Contents(await engram.JsonAsync("list", "--entity", "bob")).Should().Equal("Bob alone", "Alice and Bob visited Acme");
        var search = await engram.JsonAsync("search", "visited", "--entity", "Bob");
        search.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).Should().Contain(id);
        var explained = await engram.RunAsync("search", "Bob visited", "--entity-weight", "0.5", "--explain");
        explained.ExitCode.Should().Be(0, explained.ToString());
        explained.Stdout.Should().Contain("entity 0.500", "both memories name Bob, whom the query names");

        var cleared = await engram.JsonAsync("update", id, "--clear-entities");
        cleared.GetProperty("entities").GetArrayLength().Should().Be(0);
        var both = await engram.RunAsync("update", id, "--entity", "X", "--clear-entities");
        both.ExitCode.Should().Be(1, both.ToString());

        var tooLong = await engram.RunAsync("add", "long name", "--entity", new string('n', 257));
        tooLong.ExitCode.Should().Be(1, tooLong.ToString());
        tooLong.Stderr.Should().Contain("256");
    }
}
