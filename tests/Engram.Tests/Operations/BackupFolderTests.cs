using System.Net;
using Engram.Core.Operations;
using Engram.Tests.Cli;
using Engram.Tests.Support;
using Microsoft.Extensions.Options;

namespace Engram.Tests.Operations;

/// <summary>
/// A backup folder that cannot take backups (session 47's probe: <c>Engram:Backup:Directory=/proc/x</c>) started without a
/// word, /health said ok, and every backup answered 503 "the store is busy or unavailable", blaming the store. The folder
/// is now checked at start (refused while scheduled backups are on), by <c>engram doctor</c>, and before each backup.
/// (The tests run as root, so an unwritable folder is one under a file rather than one without permissions.)
/// </summary>
public sealed class BackupFolderTests
{
    [Fact]
    public void The_check_names_a_file_in_the_way_and_passes_a_folder_it_can_create()
    {
        using var temp = new TempDirectory();
        var file = Path.Combine(temp.Path, "a-file");
        File.WriteAllText(file, "x");
        BackupFile.FolderProblem(file).Should().Be($"the backup folder '{file}' is a file");
        BackupFile.FolderProblem(Path.Combine(file, "backups")).Should().Be($"the backup folder '{Path.Combine(file, "backups")}' cannot be created: '{file}' is a file");
        BackupFile.FolderProblem(Path.Combine(temp.Path, "new", "backups")).Should().BeNull();
        Directory.Exists(Path.Combine(temp.Path, "new")).Should().BeFalse("the check creates nothing");
        BackupFile.FolderProblem(temp.Path).Should().BeNull();
        Directory.EnumerateFileSystemEntries(temp.Path).Should().Equal([file], "the probe file is gone");
    }

    [Fact]
    public async Task A_server_with_scheduled_backups_into_an_unusable_folder_refuses_to_start()
    {
        using var temp = new TempDirectory();
        var file = Path.Combine(temp.Path, "a-file");
        File.WriteAllText(file, "x");
        var act = () => EngramServer.StartAsync(configure: o =>
        {
            o.Backup.Enabled = true;
            o.Backup.Directory = Path.Combine(file, "backups");
        });
        var refused = await act.Should().ThrowAsync<OptionsValidationException>();
        refused.Which.Failures.Should().ContainSingle().Which.Should().StartWith("Engram:Backup:Directory: the backup folder")
            .And.Contain("is a file").And.Contain("Engram:Backup:Enabled=false");
    }

    [Fact]
    public async Task With_scheduled_backups_off_a_backup_into_an_unusable_folder_is_a_503_naming_the_folder()
    {
        using var temp = new TempDirectory();
        var file = Path.Combine(temp.Path, "a-file");
        File.WriteAllText(file, "x");
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Backup.Enabled = false;
            o.Backup.Directory = Path.Combine(file, "backups");
        });
        var body = await (await server.Client.PostAsync("/v1/admin/backups", null)).ShouldBeProblemAsync(HttpStatusCode.ServiceUnavailable);
        body.GetProperty("reason").GetString().Should().Be("backup_folder");
        body.GetProperty("detail").GetString().Should().Contain(Path.Combine(file, "backups")).And.Contain("Engram:Backup:Directory").And.NotContain("store is busy");
    }

    [Fact]
    public async Task Doctor_fails_on_an_unusable_backup_folder_and_on_listen_addresses_serve_refuses()
    {
        using var data = new TempDirectory();
        (await CliProcess.RunAsync(["add", "a memory", "--data", data.Path])).ExitCode.Should().Be(0);
        var file = Path.Combine(data.Path, "a-file");
        File.WriteAllText(file, "x");
        var backups = await CliProcess.RunAsync(["doctor", "--data", data.Path],
            environment: new Dictionary<string, string> { ["Engram__Backup__Directory"] = Path.Combine(file, "backups") });
        backups.ExitCode.Should().Be(1, backups.ToString());
        backups.Stdout.Should().Contain("FAIL backup_folder").And.Contain("is a file");

        foreach (var (args, environment) in new (string[], Dictionary<string, string>)[]
                 {
                     (["--urls", "garbage"], []),
                     (["--urls", "http://127.0.0.1:99999"], []),
                     ([], new() { ["ASPNETCORE_URLS"] = "garbage" }),
                 })
        {
            var doctor = await CliProcess.RunAsync(["doctor", "--data", data.Path, .. args], environment: environment);
            doctor.ExitCode.Should().Be(1, doctor.ToString());
            doctor.Stdout.Should().Contain("FAIL configuration").And.ContainAny("is not a listen address", "a port is 1-65535");
        }
        var fine = await CliProcess.RunAsync(["doctor", "--data", data.Path]);
        fine.ExitCode.Should().Be(0, fine.ToString());
        fine.Stdout.Should().Contain("backup_folder");
    }
}
