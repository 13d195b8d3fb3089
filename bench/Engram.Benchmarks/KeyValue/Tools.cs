using System.Diagnostics;

namespace Engram.Benchmarks.KeyValue;

/// <summary>Installs Debian packages for the baselines when their commands are missing (the benchmarks run as root on CI-like machines).</summary>
internal static class Tools
{
    public static async Task EnsureInstalledAsync(IReadOnlyList<string> commands, IReadOnlyList<string> packages)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        if (commands.All(tool => path.Split(':').Any(dir => File.Exists(Path.Combine(dir, tool)))))
        {
            return;
        }
        Console.Error.WriteLine($"{string.Join(" or ", commands)} is missing: apt-get install -y {string.Join(' ', packages)}");
        var start = new ProcessStartInfo("apt-get") { UseShellExecute = false };
        foreach (var arg in new[] { "install", "-y", "-q" }.Concat(packages))
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("cannot run apt-get");
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"apt-get install {string.Join(' ', packages)} failed (exit {process.ExitCode}); install them and run again");
        }
    }
}
