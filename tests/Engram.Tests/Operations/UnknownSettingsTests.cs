using Engram.Server;
using Engram.Tests.Cli;
using Engram.Tests.Support;
using Microsoft.Extensions.Configuration;

namespace Engram.Tests.Operations;

/// <summary>
/// Settings that bind to nothing are reported, not ignored in silence (<see cref="UnknownSettings"/>): and every name
/// Engram itself hands out (the operator variables, the shipped appsettings.json) is one it reads.
/// </summary>
public sealed class UnknownSettingsTests
{
    private static IConfiguration Config(IEnumerable<KeyValuePair<string, string?>> values) => new ConfigurationBuilder().AddInMemoryCollection(values).Build();

    [Fact]
    public void Every_operator_variable_sets_a_real_setting()
    {
        var config = Config(ServerApplication.OperatorVariables.Select(v => new KeyValuePair<string, string?>($"{EngramServerOptions.Section}:{v.Key}", "1")));
        UnknownSettings.Find(config).Should().BeEmpty();
        ServerApplication.OperatorVariables.Should().HaveCountGreaterThan(30);
    }

    [Fact]
    public void The_shipped_appsettings_names_only_real_settings()
    {
        var file = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "src", "Engram", "appsettings.json");
        File.Exists(file).Should().BeTrue(file);
        UnknownSettings.Find(new ConfigurationBuilder().AddJsonFile(Path.GetFullPath(file)).Build()).Should().BeEmpty();
    }

    [Fact]
    public void A_misspelt_name_a_missing_section_a_derived_value_and_a_value_given_sections_are_each_named()
    {
        var config = Config(new Dictionary<string, string?>
        {
            ["Engram:KeyValue:Durability"] = "Relaxed",       // real
            ["engram:keyvalue:defaultttlseconds"] = "60",      // real, any case
            ["Engram:KeyValue:Durablity"] = "Relaxed",        // misspelt
            ["Engram:Nope:Deeper"] = "1",                      // no such section
            ["Engram:RateLimit:Enabled"] = "false",            // derived from PermitsPerSecond and MaxConcurrentRequests
            ["Engram:DataPath:Sub"] = "x",                     // a single value given a section
            ["Logging:LogLevel:Default"] = "Warning",          // not Engram's: not looked at
        });
        UnknownSettings.Find(config).Should().BeEquivalentTo(
            "Engram:KeyValue:Durablity: no such setting",
            "Engram:Nope: no such setting",
            "Engram:RateLimit:Enabled: not a setting (derived from the others)",
            "Engram:DataPath: takes a single value, not a section");
    }

    [Fact]
    public async Task Doctor_warns_of_an_ignored_setting_and_names_it()
    {
        using var data = new TempDirectory();
        (await CliProcess.RunAsync(["add", "a memory", "--data", data.Path])).ExitCode.Should().Be(0);
        var doctor = await CliProcess.RunAsync(["doctor", "--data", data.Path],
            environment: new Dictionary<string, string> { ["Engram__KeyValue__Durablity"] = "Relaxed" });
        doctor.ExitCode.Should().Be(1, doctor.ToString());
        doctor.Stdout.Should().Contain("WARN settings").And.Contain("Engram:KeyValue:Durablity: no such setting").And.Contain("docs/CONFIGURATION.md");
    }
}
