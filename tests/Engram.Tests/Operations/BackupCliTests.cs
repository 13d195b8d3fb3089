using System.Net;
using System.Text.Json;
using Engram.Core.Operations;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Cli;
using Engram.Tests.Support;

namespace Engram.Tests.Operations;

/// <summary><c>engram backup</c>, <c>backup list</c>, <c>backup verify</c> and <c>restore</c> through the real executable: exit codes and messages.</summary>
public sealed class BackupCliTests
{
    [Fact]
    public async Task Backup_of_a_folder_a_server_is_writing_verifies_lists_and_restores()
    {
        using var data = new TempDirectory();
        using var files = new TempDirectory();
        var backup = Path.Combine(files.Path, "one" + BackupFile.Extension);
        await using (var server = await EngramServer.StartAsync(data.Path))
        {
            for (var i = 0; i < 10; i++)
            {
                (await server.PostJsonAsync("/v1/memories", JsonSerializer.Serialize(new { content = $"cli backup memory {i}" }))).StatusCode.Should().Be(HttpStatusCode.Created);
            }
            var made = await CliProcess.RunAsync(["backup", "--data", data.Path, "--out", backup]);
            made.ExitCode.Should().Be(0, made.ToString());
            made.Stdout.Should().Contain("10 memories").And.Contain("keep it as safe as the store");
            (await server.PostJsonAsync("/v1/memories", """{"content":"after the backup"}""")).StatusCode.Should().Be(HttpStatusCode.Created);
        }
        if (!OperatingSystem.IsWindows())
        {
            File.GetUnixFileMode(backup).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite, "a backup is as sensitive as the store");
        }

        var verify = await CliProcess.RunAsync(["backup", "verify", backup]);
        verify.ExitCode.Should().Be(0, verify.ToString());
        verify.Stdout.Should().Contain("is sound");
        var json = await CliProcess.RunAsync(["backup", "verify", backup, "--json"]);
        json.ExitCode.Should().Be(0, json.ToString());
        json.Json().GetProperty("manifest").GetProperty("counts").GetProperty("memories").GetInt64().Should().Be(10);

        var list = await CliProcess.RunAsync(["backup", "list", "--dir", files.Path, "--json"]);
        list.ExitCode.Should().Be(0, list.ToString());
        var item = list.Json().GetProperty("items").EnumerateArray().Single();
        item.GetProperty("name").GetString().Should().Be("one" + BackupFile.Extension);
        item.GetProperty("kind").GetString().Should().Be("manual");
        item.GetProperty("verified").GetString().Should().Be("ok");
        (await CliProcess.RunAsync(["backup", "list", "--dir", files.Path])).Stdout.Should().Contain("one" + BackupFile.Extension).And.Contain("LAST SEQ");

        var target = Path.Combine(files.Path, "restored");
        var restore = await CliProcess.RunAsync(["restore", backup, "--data", target]);
        restore.ExitCode.Should().Be(0, restore.ToString());
        var listed = await CliProcess.RunAsync(["list", "--data", target, "--json", "--limit", "100"]);
        listed.Json().GetProperty("items").GetArrayLength().Should().Be(10, "the memory written after the backup is not in it");

        var again = await CliProcess.RunAsync(["restore", backup, "--data", target]);
        again.ExitCode.Should().Be(1, again.ToString());
        again.Stderr.Should().Contain("holds an Engram store already").And.Contain("--force");
        var forced = await CliProcess.RunAsync(["restore", backup, "--data", data.Path, "--force"]);
        forced.ExitCode.Should().Be(0, forced.ToString());
        (await CliProcess.RunAsync(["list", "--data", data.Path, "--json", "--limit", "100"])).Json().GetProperty("items").GetArrayLength().Should().Be(10, "--force replaced the store");
    }

    [Fact]
    public async Task Damaged_backups_exit_non_zero_with_the_problem_and_restore_nothing()
    {
        using var data = new TempDirectory();
        using var files = new TempDirectory();
        (await CliProcess.RunAsync(["add", "--data", data.Path, "a memory to back up"])).ExitCode.Should().Be(0);
        var backup = Path.Combine(files.Path, "good" + BackupFile.Extension);
        (await CliProcess.RunAsync(["backup", "--data", data.Path, "--out", backup])).ExitCode.Should().Be(0);
        var bytes = await File.ReadAllBytesAsync(backup);

        var flipped = Path.Combine(files.Path, "flipped" + BackupFile.Extension);
        var damaged = (byte[])bytes.Clone();
        damaged[^50] ^= 0xFF;
        await File.WriteAllBytesAsync(flipped, damaged);
        var verify = await CliProcess.RunAsync(["backup", "verify", flipped]);
        verify.ExitCode.Should().Be(1, verify.ToString());
        verify.Stderr.Should().Contain("NOT a sound backup").And.Contain("SHA-256");

        var truncated = Path.Combine(files.Path, "truncated" + BackupFile.Extension);
        await File.WriteAllBytesAsync(truncated, bytes[..(bytes.Length / 2)]);
        var short_ = await CliProcess.RunAsync(["backup", "verify", truncated, "--json"]);
        short_.ExitCode.Should().Be(1, short_.ToString());
        short_.Stderr.Should().Contain("truncated");

        var target = Path.Combine(files.Path, "target");
        var restore = await CliProcess.RunAsync(["restore", truncated, "--data", target]);
        restore.ExitCode.Should().Be(1, restore.ToString());
        restore.Stderr.Should().Contain("nothing was restored");
        File.Exists(Path.Combine(target, SqliteMemoryStore.FileName)).Should().BeFalse();

        var missing = await CliProcess.RunAsync(["backup", "verify", Path.Combine(files.Path, "absent" + BackupFile.Extension)]);
        missing.ExitCode.Should().Be(1, missing.ToString());
        missing.Stderr.Should().Contain("no backup file");
        var noStore = await CliProcess.RunAsync(["backup", "--data", Path.Combine(files.Path, "empty"), "--out", Path.Combine(files.Path, "x" + BackupFile.Extension)]);
        noStore.ExitCode.Should().Be(1, noStore.ToString());
        noStore.Stderr.Should().Contain("no Engram database");
        var exists = await CliProcess.RunAsync(["backup", "--data", data.Path, "--out", backup]);
        exists.ExitCode.Should().Be(1, exists.ToString());
        exists.Stderr.Should().Contain("exists already");
    }
}
