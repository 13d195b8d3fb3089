namespace Engram.Tests.Cli;

public sealed class CliHelpTests
{
    [Theory]
    [InlineData("", "serve")]
    [InlineData("serve", "--urls")]
    [InlineData("add", "--on-duplicate")]
    [InlineData("get", "<id>")]
    [InlineData("list", "--tags-match")]
    [InlineData("update", "--if-version")]
    [InlineData("delete", "--confirm")]
    [InlineData("history", "<id>")]
    [InlineData("stats", "--server")]
    [InlineData("keys", "rotate")]
    [InlineData("audit", "--since")]
    public async Task Help_works_on_every_command(string command, string mentions)
    {
        // -h on one command stands for the short form everywhere (it is one shared option).
        var flag = command == "add" ? "-h" : "--help";
        var result = await CliProcess.RunAsync(command.Length == 0 ? [flag] : [command, flag]);
        result.ExitCode.Should().Be(0, result.ToString());
        result.Stderr.Should().BeEmpty();
        result.Stdout.Should().Contain("Usage:").And.Contain(mentions);
    }
}
