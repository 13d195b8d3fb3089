using System.Text;
using Engram.Server.Mcp;

namespace Engram.Tests.Mcp;

/// <summary>The stdio transport's line check on its own: what passes to the SDK, what is answered, in what order.</summary>
public sealed class StdioLinesTests
{
    [Fact]
    public async Task Messages_pass_in_order_others_are_answered_long_lines_are_skipped_and_a_last_line_needs_no_newline()
    {
        var tooLong = "{\"jsonrpc\":\"2.0\",\"method\":\"x\",\"params\":{\"p\":\"" + new string('a', StdioLines.MaxLineBytes) + "\"}}";
        var input = string.Join('\n',
            """{"jsonrpc":"2.0","id":1,"method":"ping"}""",
            "not json",
            tooLong,
            "",
            """{"jsonrpc":"2.0","id":"two","method":"ping"}""",
            """{"jsonrpc":"2.0","id":3,"method":"ping"}""");  // no newline at the end
        var stdout = new MemoryStream();
        var lines = new StdioLines(new MemoryStream(Encoding.UTF8.GetBytes(input)), stdout);

        var passed = await new StreamReader(lines.Input).ReadToEndAsync();

        passed.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().Equal(
            """{"jsonrpc":"2.0","id":1,"method":"ping"}""",
            """{"jsonrpc":"2.0","id":"two","method":"ping"}""",
            """{"jsonrpc":"2.0","id":3,"method":"ping"}""");
        var answers = Encoding.UTF8.GetString(stdout.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        answers.Should().HaveCount(2);
        answers[0].Should().Contain("-32700");
        answers[1].Should().Contain("-32600").And.Contain("at most");
    }

    [Fact]
    public async Task The_sdks_writes_go_out_as_whole_lines()
    {
        var stdout = new MemoryStream();
        var lines = new StdioLines(new MemoryStream(), stdout);
        await lines.Output.WriteAsync(Encoding.UTF8.GetBytes("{\"jsonrpc\":"));
        stdout.Length.Should().Be(0, "half a message is held until its line ends");
        await lines.Output.WriteAsync(Encoding.UTF8.GetBytes("\"2.0\"}\n{\"a\""));
        Encoding.UTF8.GetString(stdout.ToArray()).Should().Be("{\"jsonrpc\":\"2.0\"}\n");
    }
}
