using System.Runtime.InteropServices;
using Engram.Core.Storage.Sqlite;

namespace Engram.Benchmarks.Store;

/// <summary>What the figures were measured on; throughput numbers mean nothing without it.</summary>
public static class MachineInfo
{
    public static IEnumerable<string> Describe(string dataRoot)
    {
        yield return $"machine : {Environment.ProcessorCount} cores, {CpuModel()}";
        yield return $"os      : {RuntimeInformation.OSDescription} ({RuntimeInformation.OSArchitecture})";
        yield return $"runtime : {RuntimeInformation.FrameworkDescription}, {BuildConfiguration}, server GC {System.Runtime.GCSettings.IsServerGC}";
        yield return $"sqlite  : {SqliteConnection.Version}, WAL, group commit; commits synchronous=NORMAL, full-durability writes acknowledged after an fdatasync of the WAL";
        yield return $"data    : {dataRoot} on {FileSystem(dataRoot)} (a fresh folder per scenario)";
        if (LoadAverage() is { } load)
        {
            yield return $"load    : {load} (1/5/15 min, before the run)";
        }
    }

#if DEBUG
    public const string BuildConfiguration = "DEBUG build (figures not representative: use -c Release)";
#else
    public const string BuildConfiguration = "Release build";
#endif

    private static string CpuModel()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            return line?.Split(':', 2)[1].Trim() ?? RuntimeInformation.ProcessArchitecture.ToString();
        }
        catch (IOException)
        {
            return RuntimeInformation.ProcessArchitecture.ToString();
        }
        catch (UnauthorizedAccessException)
        {
            return RuntimeInformation.ProcessArchitecture.ToString();
        }
    }

    /// <summary>The type of the file system holding <paramref name="path"/> (longest matching mount point), e.g. ext4 or tmpfs.</summary>
    private static string FileSystem(string path)
    {
        try
        {
            var full = Path.GetFullPath(path);
            var best = File.ReadLines("/proc/mounts")
                .Select(line => line.Split(' '))
                .Where(f => f.Length >= 3 && (full == f[1] || full.StartsWith(f[1].TrimEnd('/') + "/", StringComparison.Ordinal)))
                .MaxBy(f => f[1].Length);
            return best is null ? "an unknown file system" : $"{best[2]} ({best[0]})";
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "an unknown file system";
        }
    }

    private static string? LoadAverage()
    {
        try
        {
            var fields = File.ReadAllText("/proc/loadavg").Split(' ');
            return fields.Length >= 3 ? string.Join(' ', fields[..3]) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
