using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary>
/// export --out and backup --out never write one of the store's own files (an outside hostile-input probe: export --out
/// D/engram.db --force replaced the database with the export's text, exit 0): refused with exit 1, the store untouched.
/// </summary>
public sealed class StoreOwnFilesTests
{
    [Theory]
    [InlineData("engram.db")]
    [InlineData("engram.db-wal")]
    [InlineData("engram.db-shm")]
    [InlineData("engram.db-journal")]
    [InlineData("engram.index")]
    [InlineData("engram.serve.lock")]
    public async Task Export_and_backup_refuse_to_write_a_file_of_the_store_they_read(string name)
    {
        using var temp = new TempDirectory();
        var data = Path.Combine(temp.Path, "data");
        (await CliProcess.RunAsync(["add", "kept through the refusal", "--data", data])).ExitCode.Should().Be(0);
        var database = Path.Combine(data, "engram.db");
        var before = await File.ReadAllBytesAsync(database);

        var export = await CliProcess.RunAsync(["export", "--data", data, "--out", Path.Combine(data, name), "--force"]);
        export.ExitCode.Should().Be(1, export.ToString());
        export.Stderr.Should().Contain("is one of the store's own files").And.NotContain("unexpected error");

        var backup = await CliProcess.RunAsync(["backup", "--data", data, "--out", Path.Combine(data, name)]);
        backup.ExitCode.Should().Be(1, backup.ToString());
        backup.Stderr.Should().Contain("is one of the store's own files");

        (await File.ReadAllBytesAsync(database)).Should().Equal(before);
        var listed = await CliProcess.RunAsync(["list", "--data", data]);
        listed.ExitCode.Should().Be(0, listed.ToString());
        listed.Stdout.Should().Contain("kept through the refusal");
    }

    [Fact]
    public async Task A_path_to_the_database_through_a_symbolic_link_is_refused_too()
    {
        using var temp = new TempDirectory();
        var data = Path.Combine(temp.Path, "data");
        (await CliProcess.RunAsync(["add", "kept", "--data", data])).ExitCode.Should().Be(0);
        var link = Path.Combine(temp.Path, "alias");
        Directory.CreateSymbolicLink(link, data);

        var export = await CliProcess.RunAsync(["export", "--data", data, "--out", Path.Combine(link, "engram.db"), "--force"]);
        export.ExitCode.Should().Be(1, export.ToString());
        export.Stderr.Should().Contain("is one of the store's own files");

        // A file of another name in the data folder is the user's to write.
        var beside = await CliProcess.RunAsync(["export", "--data", data, "--out", Path.Combine(data, "export.jsonl")]);
        beside.ExitCode.Should().Be(0, beside.ToString());
    }

    [Fact]
    public async Task Backup_to_an_existing_folder_says_it_is_a_folder()
    {
        using var temp = new TempDirectory();
        var data = Path.Combine(temp.Path, "data");
        (await CliProcess.RunAsync(["add", "kept", "--data", data])).ExitCode.Should().Be(0);
        var backup = await CliProcess.RunAsync(["backup", "--data", data, "--out", temp.Path]);
        backup.ExitCode.Should().Be(1, backup.ToString());
        backup.Stderr.Should().Contain("is a folder").And.NotContain("already exists");
    }
}
