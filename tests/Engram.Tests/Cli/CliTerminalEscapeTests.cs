using System.Text.Json;

namespace Engram.Tests.Cli;

/// <summary>
/// Stored text never reaches the terminal as control characters (an outside hostile-input probe: list printed an ESC
/// sequence that cleared the screen and retitled the window): human-readable output shows them escaped, --json keeps
/// them as JSON escapes of the exact text.
/// </summary>
public sealed class CliTerminalEscapeTests
{
    private const string Evil = "evil \u001b[2J\u001b]0;pwned\u0007 title \u009b31m\r over";

    private static void ShowsNoControlCharacter(CliResult result)
    {
        result.ExitCode.Should().Be(0, result.ToString());
        (result.Stdout + result.Stderr).Where(c => char.IsControl(c) && c is not '\n' and not '\t').Should().BeEmpty(result.ToString());
    }

    [Fact]
    public async Task Every_view_of_stored_text_escapes_its_control_characters()
    {
        await using var engram = await CliBackend.StartAsync(CliMode.InProcess);
        var id = (await engram.JsonAsync("add", Evil, "--user", "esc", "--tag", "t")).GetProperty("id").GetString()!;
        (await engram.RunAsync("update", id, "--content", Evil + " again")).ExitCode.Should().Be(0);
        (await engram.RunAsync("kv", "set", "esc", JsonSerializer.Serialize(Evil))).ExitCode.Should().Be(0);
        (await engram.RunAsync("graph", "add-entity", "Mallory", "--type", "person", "--obs", Evil)).ExitCode.Should().Be(0);

        foreach (var args in new[]
        {
            new[] { "list", "--user", "esc" },
            ["get", id],
            ["history", id],
            ["search", "evil title", "--user", "esc"],
            ["kv", "get", "esc"],
            ["graph", "show", "Mallory"],
        })
        {
            var result = await engram.RunAsync(args);
            ShowsNoControlCharacter(result);
            // Escaped by the output layer, or shown as JSON (kv values are JSON).
            result.Stdout.Should().Match(s => s.Contains("\\x1b") || s.Contains("\\u001B"), string.Join(' ', args));
        }
        var get = await engram.RunAsync("get", id);
        get.Stdout.Should().Contain(@"evil \x1b[2J\x1b]0;pwned\x07 title \u009b31m\r over again");

        // --json is the exact text, in JSON's escapes.
        var json = await engram.JsonAsync("get", id);
        json.GetProperty("content").GetString().Should().Be(Evil + " again");
    }

    [Fact]
    public async Task A_bidirectional_override_is_shown_escaped_not_obeyed()
    {
        // "invoice\u202Egpj.exe" shows as "invoiceexe.jpg" in a terminal that obeys the override (U+202E, RIGHT-TO-LEFT OVERRIDE).
        const string spoof = "invoice\u202Egpj.exe and \u2067isolate\u2069";
        await using var engram = await CliBackend.StartAsync(CliMode.InProcess);
        var id = (await engram.JsonAsync("add", spoof, "--user", "bidi")).GetProperty("id").GetString()!;
        foreach (var args in new[] { new[] { "get", id }, ["list", "--user", "bidi"] })
        {
            var result = await engram.RunAsync(args);
            result.ExitCode.Should().Be(0, result.ToString());
            result.Stdout.Should().NotContain("\u202E").And.NotContain("\u2067").And.NotContain("\u2069");
            result.Stdout.Should().Contain(@"invoice\u202egpj.exe", string.Join(' ', args));
        }
        (await engram.JsonAsync("get", id)).GetProperty("content").GetString().Should().Be(spoof);
    }
}
