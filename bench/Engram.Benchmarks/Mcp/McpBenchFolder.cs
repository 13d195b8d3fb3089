using System.Diagnostics;
using System.Globalization;
using Engram.Benchmarks.Retrieval;
using Engram.Core;

namespace Engram.Benchmarks.Mcp;

/// <summary>
/// The data folder the <c>mcp</c> benchmark starts on: <c>count</c> memories of the e2e corpus, loaded
/// once by <see cref="CorpusLoader"/>, with the index snapshot a stopped server leaves, then kept under the data root
/// and reused by later runs (the <c>backends</c> benchmark's SQLite side starts on it too). A marker file written
/// last tells a complete folder from an interrupted one.
/// </summary>
public static class McpBenchFolder
{
    private const string Marker = "bench-complete";

    public static async Task<string> EnsureAsync(string dataRoot, CorpusGenerator corpus, int count, int seed)
    {
        var path = Path.Combine(dataRoot, string.Create(CultureInfo.InvariantCulture, $"mcp-{count}-seed{seed}"));
        if (File.Exists(Path.Combine(path, Marker)))
        {
            await Console.Error.WriteLineAsync($"using the cached folder {path}");
            return path;
        }
        if (Directory.Exists(path))
        {
            Directory.Delete(path, recursive: true);
        }
        Directory.CreateDirectory(path);
        var clock = Stopwatch.StartNew();
        await using (var engine = EngramEngine.OpenSqlite(path, snapshots: true))
        {
            await CorpusLoader.LoadAsync(engine, corpus, count);
            await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"loaded and indexed {count:N0} memories in {clock.Elapsed.TotalSeconds:0.0} s"));
            await engine.SaveSnapshotAsync(force: true);
        }
        await File.WriteAllTextAsync(Path.Combine(path, Marker), DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture));
        await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"built {path} in {clock.Elapsed.TotalSeconds:0.0} s"));
        return path;
    }

    /// <summary>A throw-away copy of the folder, so the writes the latency runs make never reach the cache.</summary>
    public static string CopyToScratch(string source, string dataRoot)
    {
        var target = Path.Combine(dataRoot, "mcp-scratch-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(target);
        foreach (var file in Directory.EnumerateFiles(source))
        {
            if (Path.GetFileName(file) != Marker)
            {
                File.Copy(file, Path.Combine(target, Path.GetFileName(file)));
            }
        }
        return target;
    }
}
