using Engram.Core.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Cli;

/// <summary><c>engram search</c> in both modes, and <c>engram reindex</c>.</summary>
public sealed class CliSearchTests
{
    [Theory]
    [InlineData(CliMode.InProcess)]
    [InlineData(CliMode.Server)]
    public async Task Search_FindsByWordsWithFiltersAndExplain(CliMode mode)
    {
        await using var engram = await CliBackend.StartAsync(mode);
        await engram.JsonAsync("add", "Alice adopted a puppy named Rex", "--user", "alice");
        await engram.JsonAsync("add", "Bob adopted a kitten named Tom", "--user", "bob");

        var all = await engram.JsonAsync("search", "adopted", "--k", "5");
        all.GetProperty("results").GetArrayLength().Should().Be(2);

        var mine = await engram.JsonAsync("search", "adopted pet", "--user", "alice", "--explain");
        var hit = mine.GetProperty("results").EnumerateArray().Single();
        hit.GetProperty("content").GetString().Should().Contain("Rex");
        hit.GetProperty("explain").GetProperty("lexical_contribution").GetDouble().Should().BeGreaterThan(0);

        var human = await engram.RunAsync("search", "kitten");
        human.ExitCode.Should().Be(0, human.ToString());
        human.Stdout.Split('\n')[0].Should().Contain("Bob adopted a kitten", "the memory holding the word ranks first");
        human.Stdout.Should().Contain("results in");

        var bad = await engram.RunAsync("search", "x", "--k", "0");
        bad.ExitCode.Should().Be(1, bad.ToString());
        bad.Stderr.Should().Contain("k must be between 1 and 100");
    }

    [Fact]
    public async Task Reindex_RebuildsAndWritesASnapshot_AndRefusesAMissingFolder()
    {
        using var data = new TempDirectory();
        var add = await CliProcess.RunAsync(["add", "something worth indexing", "--data", data.Path]);
        add.ExitCode.Should().Be(0, add.ToString());

        var reindex = await CliProcess.RunAsync(["reindex", "--data", data.Path]);
        reindex.ExitCode.Should().Be(0, reindex.ToString());
        reindex.Stdout.Should().Contain("Rebuilt the indexes: 1 memories");
        reindex.Stderr.Should().Contain("100");
        File.Exists(Path.Combine(data.Path, IndexSnapshot.FileName)).Should().BeTrue();

        var missing = await CliProcess.RunAsync(["reindex", "--data", Path.Combine(data.Path, "nothing-here")]);
        missing.ExitCode.Should().Be(1, missing.ToString());
        missing.Stderr.Should().Contain("no Engram database");
    }
}
