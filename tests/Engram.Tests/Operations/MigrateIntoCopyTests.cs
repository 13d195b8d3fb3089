using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>
/// <c>engram migrate</c> into a copy of its source (a restored backup keeps the store id) is refused, and the message says
/// why: it said "the same store" of two different folders (session 47's probe).
/// </summary>
public sealed class MigrateIntoCopyTests
{
    [Fact]
    public async Task Migrating_into_a_restored_copy_of_the_source_is_refused_naming_the_copy()
    {
        using var temp = new TempDirectory();
        var source = Path.Combine(temp.Path, "source");
        (await CliProcess.RunAsync(["add", "a memory to copy", "--data", source])).ExitCode.Should().Be(0);
        var backup = Path.Combine(temp.Path, "source.engram-backup");
        (await CliProcess.RunAsync(["backup", "--data", source, "--out", backup])).ExitCode.Should().Be(0);
        var copy = Path.Combine(temp.Path, "copy");
        var restored = await CliProcess.RunAsync(["restore", backup, "--data", copy]);
        restored.ExitCode.Should().Be(0, restored.ToString());

        var refused = await CliProcess.RunAsync(["migrate", "--from", source, "--to", copy]);
        refused.ExitCode.Should().Be(1, refused.ToString());
        refused.Stderr.Should().Contain("copies of one").And.Contain("restored backup").And.Contain("new or empty store");
    }
}
