using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;

namespace Engram.Tests.Operations;

/// <summary>
/// The real Prometheus tools from the Debian package <c>prometheus</c> (.ci/run installs it), and the
/// parsing the metrics tests share. A missing tool fails the test, it never skips it.
/// </summary>
internal static partial class PrometheusTools
{
    public const string Prometheus = "/usr/bin/prometheus";
    public const string Promtool = "/usr/bin/promtool";

    public static string Require(string tool) =>
        File.Exists(tool) ? tool
        : throw new InvalidOperationException(
            $"{tool} is missing: the metrics tests run the real Prometheus. Install the Debian package: apt-get install -y prometheus (.ci/run does).");

    /// <summary>The repository's root (where Engram.slnx is), for the shipped monitoring/ files.</summary>
    public static string RepositoryRoot()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Engram.slnx")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("Engram.slnx not found above the test folder");
        }
        return root;
    }

    /// <summary>Runs <paramref name="tool"/> to its end (at most a minute) with <paramref name="stdin"/>; returns the exit code and both outputs.</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(string tool, string? stdin, string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo(Require(tool))
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(1));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, (await stdout) + (await stderr));
    }

    /// <summary>The sample names in a Prometheus text exposition (histograms give name_bucket, _sum and _count).</summary>
    public static HashSet<string> SampleNames(string exposition) =>
        exposition.Split('\n')
            .Where(line => line.Length > 0 && line[0] != '#')
            .Select(line => SampleName().Match(line).Value)
            .Where(name => name.Length > 0)
            .ToHashSet(StringComparer.Ordinal);

    /// <summary>The value of the sample <paramref name="name"/> whose labels include every one of <paramref name="labels"/> (e.g. <c>type="x"</c>); null when there is none.</summary>
    public static double? Value(string exposition, string name, params string[] labels)
    {
        foreach (var line in exposition.Split('\n'))
        {
            if (line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] is '{' or ' '
                && labels.All(l => line.Contains(l, StringComparison.Ordinal)))
            {
                var value = line[(line.LastIndexOf('}') is var close and >= 0 ? close + 1 : name.Length)..].Trim().Split(' ')[0];
                return double.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        return null;
    }

    /// <summary>
    /// The metric names a PromQL expression reads: identifiers that are not functions, keywords, label
    /// names (inside braces or by/without/on/ignoring lists), label values or numbers.
    /// </summary>
    public static IEnumerable<string> MetricNames(string expr)
    {
        var text = Quoted().Replace(expr, "\"\"");
        text = Braces().Replace(text, "{}");
        text = Grouping().Replace(text, "");
        text = Range().Replace(text, "");
        var builder = new StringBuilder();
        foreach (Match m in Identifier().Matches(text))
        {
            var after = text[(m.Index + m.Length)..].TrimStart();
            if (after.StartsWith('(') || Keywords.Contains(m.Value) || m.Value.StartsWith('$'))
            {
                continue;
            }
            yield return m.Value;
        }
    }

    private static readonly HashSet<string> Keywords = ["and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "le", "inf", "nan"];

    [GeneratedRegex(@"^[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex SampleName();

    [GeneratedRegex("\"(?:[^\"\\\\]|\\\\.)*\"")]
    private static partial Regex Quoted();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex Braces();

    [GeneratedRegex(@"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")]
    private static partial Regex Grouping();

    [GeneratedRegex(@"\[[^\]]*\]")]
    private static partial Regex Range();

    [GeneratedRegex(@"(?<![\w$.])[a-zA-Z_:][a-zA-Z0-9_:]*")]
    private static partial Regex Identifier();
}
