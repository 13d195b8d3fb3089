using System.Text.Json;
using Engram.Core.Operations;
using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>
/// engram import --in against edited files (an outside hostile-input probe): a header whose format_version is missing,
/// unsupported or not an integer is bad input (exit 1, a clear message), not an unexpected error. The exact round trip
/// of real exports is tested in <see cref="ExportImportTests"/>.
/// </summary>
public sealed class ImportValidationTests
{
    [Theory]
    [InlineData("99", "unsupported format_version 99 (this engram reads 1 to {0}); use a newer engram")]
    [InlineData("0", "unsupported format_version 0 (this engram reads 1 to {0})")]
    [InlineData("\"3\"", "format_version must be an integer (the header says \"3\")")]
    [InlineData("3.5", "format_version must be an integer (the header says 3.5)")]
    [InlineData("null", "format_version must be an integer (the header says null)")]
    [InlineData(null, "the header has no format_version (this engram reads export format versions 1 to {0})")]
    public async Task A_header_whose_format_version_is_missing_unsupported_or_not_an_integer_is_bad_input(string? version, string message)
    {
        using var temp = new TempDirectory();
        var expected = string.Format(System.Globalization.CultureInfo.InvariantCulture, message, ExportHeader.CurrentVersion);
        var file = Path.Combine(temp.Path, "header.jsonl");
        var field = version is null ? "" : $"\"format_version\":{version},";
        await File.WriteAllTextAsync(file, "{\"kind\":\"header\",\"format\":\"engram-export\"," + field + "\"counts\":{\"memories\":1}}\n");
        var data = Path.Combine(temp.Path, "data");

        var plain = await CliProcess.RunAsync(["import", "--in", file, "--data", data]);
        plain.ExitCode.Should().Be(1, plain.ToString());
        plain.Stderr.Should().Contain("engram: line 1: " + expected).And.NotContain("unexpected error");

        var json = await CliProcess.RunAsync(["import", "--in", file, "--data", data, "--json"]);
        json.ExitCode.Should().Be(1, json.ToString());
        var problem = JsonDocument.Parse(json.Stderr).RootElement;
        problem.GetProperty("status").GetInt32().Should().Be(400);
        problem.GetProperty("exit_code").GetInt32().Should().Be(1);
        problem.GetProperty("field").GetString().Should().Be("format_version");
        problem.GetProperty("detail").GetString().Should().Be("line 1: " + expected);
    }

    [Fact]
    public async Task A_header_whose_counts_are_not_numbers_still_imports()
    {
        using var temp = new TempDirectory();
        var file = Path.Combine(temp.Path, "counts.jsonl");
        // The counts only drive the progress bar; a string among them had been an unexpected error (exit 2).
        await File.WriteAllTextAsync(file, """{"kind":"header","format":"engram-export","format_version":3,"counts":{"memories":"x","kv":null,"entities":-4}}""" + "\n");
        var result = await CliProcess.RunAsync(["import", "--in", file, "--data", Path.Combine(temp.Path, "data"), "--json"]);
        result.ExitCode.Should().Be(0, result.ToString());
        result.Json().GetProperty("imported").GetInt64().Should().Be(0);
    }
}
