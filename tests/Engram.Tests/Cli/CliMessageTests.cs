using Engram.Tests.Support;

namespace Engram.Tests.Cli;

/// <summary>
/// Messages an outside hostile-input probe found wrong or missing: each is a user error (exit 1) in the CLI's own words,
/// never a raw .NET message (exit 2) or a silent success.
/// </summary>
public sealed class CliMessageTests
{
    [Fact]
    public async Task Flags_that_cannot_hold_are_refused_in_the_flags_words()
    {
        await using var engram = await CliBackend.StartAsync(CliMode.InProcess);
        var id = (await engram.JsonAsync("add", "a memory")).GetProperty("id").GetString()!;

        var both = await engram.RunAsync("kv", "set", "k", "v", "--nx", "--xx");
        both.ExitCode.Should().Be(1, both.ToString());
        both.Stderr.Should().Contain("--nx and --xx exclude each other");

        var version = await engram.RunAsync("update", id, "--content", "changed", "--if-version", "-3");
        version.ExitCode.Should().Be(1, version.ToString());
        version.Stderr.Should().Contain("--if-version must be a version, 1 or more (got -3)");

        var add = await engram.RunAsync("add", "typed", "--type", "BAD");
        var list = await engram.RunAsync("list", "--type", "BAD");
        list.ExitCode.Should().Be(1, list.ToString());
        add.ExitCode.Should().Be(1, add.ToString());
        list.Stderr.Should().Be(add.Stderr, "list refuses a type no memory can have with add's words");
    }

    [Fact]
    public async Task A_memory_id_in_its_uuid_form_names_the_memory()
    {
        await using var engram = await CliBackend.StartAsync(CliMode.InProcess);
        var id = (await engram.JsonAsync("add", "found by its uuid")).GetProperty("id").GetString()!;
        var uuid = Engram.Core.Common.Ulid.ToUuid(id);

        var get = await engram.JsonAsync("get", uuid);
        get.GetProperty("id").GetString().Should().Be(id);
        (await engram.RunAsync("history", uuid.ToUpperInvariant())).ExitCode.Should().Be(0);
        (await engram.RunAsync("update", uuid, "--content", "changed through the uuid")).ExitCode.Should().Be(0);
        (await engram.JsonAsync("get", id)).GetProperty("content").GetString().Should().Be("changed through the uuid");

        var bad = await engram.RunAsync("get", "01a24fc0-9a2f-6646-3996-d876214b1e3");
        bad.ExitCode.Should().Be(1, bad.ToString());
        bad.Stderr.Should().Contain("is not a memory id");
    }

    [Fact]
    public async Task Folders_and_files_given_in_each_others_place_are_named_as_such()
    {
        using var temp = new TempDirectory();
        var data = Path.Combine(temp.Path, "data");
        (await CliProcess.RunAsync(["add", "kept", "--data", data])).ExitCode.Should().Be(0);
        var backupFile = Path.Combine(temp.Path, "b.engram-backup");
        (await CliProcess.RunAsync(["backup", "--data", data, "--out", backupFile])).ExitCode.Should().Be(0);
        var plainFile = Path.Combine(temp.Path, "plain.txt");
        await File.WriteAllTextAsync(plainFile, "not a folder");

        foreach (var args in new[]
        {
            new[] { "import", "--in", temp.Path, "--data", data },
            ["backup", "verify", temp.Path],
            ["restore", temp.Path, "--data", Path.Combine(temp.Path, "new")],
        })
        {
            var result = await CliProcess.RunAsync(args);
            result.ExitCode.Should().Be(1, result.ToString());
            result.Stderr.Should().Contain("is a folder", string.Join(' ', args)).And.NotContain("no file").And.NotContain("no backup file");
        }

        var intoFile = await CliProcess.RunAsync(["restore", backupFile, "--data", plainFile]);
        intoFile.ExitCode.Should().Be(1, intoFile.ToString());
        intoFile.Stderr.Should().Contain("is a file; --data names the folder to restore into");

        var missing = await CliProcess.RunAsync(["backup", "list", "--dir", Path.Combine(temp.Path, "nonexistent")]);
        missing.ExitCode.Should().Be(1, missing.ToString());
        missing.Stderr.Should().Contain("no folder");
    }

    [Fact]
    public async Task A_refused_restore_removes_the_folder_it_made()
    {
        using var temp = new TempDirectory();
        var damaged = Path.Combine(temp.Path, "damaged.engram-backup");
        await File.WriteAllTextAsync(damaged, "not a backup at all");
        var target = Path.Combine(temp.Path, "new-data");

        var result = await CliProcess.RunAsync(["restore", damaged, "--data", target]);
        result.ExitCode.Should().NotBe(0, result.ToString());
        Directory.Exists(target).Should().BeFalse("nothing was restored, so the folder the restore made is gone");

        // A folder that was there before is the user's: it stays.
        Directory.CreateDirectory(target);
        (await CliProcess.RunAsync(["restore", damaged, "--data", target])).ExitCode.Should().NotBe(0);
        Directory.Exists(target).Should().BeTrue();
    }
}
