using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace Engram.AnnBench;

/// <summary>
/// hnswlib in a child process that keeps its index and runs one timed pass per "ef E" line on stdin: either the
/// native build (hnswlib_native.cpp compiled here with -O3 -march=native against libhnswlib-dev's headers) or
/// Debian's python3-hnswlib (hnswlib_bench.py), both single-threaded.
/// </summary>
internal sealed class HnswlibRunner : IAnnContender
{
    private readonly Process _process;
    private readonly string _folder;
    private readonly string _labelPrefix;
    private readonly int _count;

    private HnswlibRunner(string name, Process process, string folder, string labelPrefix, int count, double buildSeconds, int vectors)
    {
        Name = name;
        _process = process;
        _folder = folder;
        _labelPrefix = labelPrefix;
        _count = count;
        BuildInsertsPerSecond = vectors / buildSeconds;
    }

    public string Name { get; }

    public double BuildInsertsPerSecond { get; }

    public static HnswlibRunner StartNative(BenchOptions options, AnnDataset dataset, string folder) =>
        Start("hnswlib-native", CompileNative(), [], options, dataset, folder, "native");

    public static HnswlibRunner StartPython(BenchOptions options, AnnDataset dataset, string folder) =>
        Start("hnswlib-debian", options.Python, [Path.Combine(AppContext.BaseDirectory, "hnswlib_bench.py")], options, dataset, folder, "python");

    private static HnswlibRunner Start(string name, string program, string[] prefix, BenchOptions options, AnnDataset dataset, string folder, string labels)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = false,
        };
        foreach (var argument in prefix.Concat(new object[] { folder, dataset.Dimensions, dataset.Count, dataset.QueryCount, options.K, options.M, options.EfConstruction }
                     .Select(a => Convert.ToString(a, CultureInfo.InvariantCulture)!)))
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["OMP_NUM_THREADS"] = "1";
        Console.WriteLine($"{name}: building (one thread)...");
        var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {program}");
        var line = process.StandardOutput.ReadLine()
            ?? throw new InvalidOperationException($"{name} ended before building (exit {WaitExit(process)}); for the Debian row: apt-get install -y python3-hnswlib python3-numpy");
        using var json = JsonDocument.Parse(line);
        var runner = new HnswlibRunner(name, process, folder, labels, dataset.QueryCount * options.K, json.RootElement.GetProperty("build_seconds").GetDouble(), dataset.Count);
        Console.WriteLine($"{name}: build {runner.BuildInsertsPerSecond:F0} inserts/s");
        return runner;
    }

    public (double Seconds, int[] Labels) Pass(int ef)
    {
        _process.StandardInput.WriteLine($"ef {ef}");
        _process.StandardInput.Flush();
        var line = _process.StandardOutput.ReadLine() ?? throw new InvalidOperationException($"{Name} ended during a pass");
        using var json = JsonDocument.Parse(line);
        var labels = MemoryMarshal.Cast<byte, int>(File.ReadAllBytes(Path.Combine(_folder, $"{_labelPrefix}_ef{ef}.i32"))).ToArray();
        if (labels.Length != _count)
        {
            throw new InvalidOperationException($"{Name} wrote {labels.Length} labels, expected {_count}");
        }
        return (json.RootElement.GetProperty("seconds").GetDouble(), labels);
    }

    /// <summary>Compiles hnswlib_native.cpp for this CPU into /var/tmp/engram-bench (again when the source is newer).</summary>
    private static string CompileNative()
    {
        var source = Path.Combine(AppContext.BaseDirectory, "hnswlib_native.cpp");
        var binary = Path.Combine(BenchPaths.CacheRoot, "hnswlib_native");
        if (File.Exists(binary) && File.GetLastWriteTimeUtc(binary) >= File.GetLastWriteTimeUtc(source))
        {
            return binary;
        }
        if (!File.Exists("/usr/include/hnswlib/hnswlib.h"))
        {
            throw new InvalidOperationException("the native hnswlib row needs Debian's headers: apt-get install -y libhnswlib-dev g++ (or pass --skip-native)");
        }
        Directory.CreateDirectory(BenchPaths.CacheRoot);
        var compile = Process.Start(new ProcessStartInfo("g++") { ArgumentList = { "-O3", "-march=native", "-std=c++17", source, "-o", binary } })
            ?? throw new InvalidOperationException("cannot start g++");
        compile.WaitForExit();
        if (compile.ExitCode != 0)
        {
            throw new InvalidOperationException($"g++ failed ({compile.ExitCode}) compiling {source}");
        }
        return binary;
    }

    private static int WaitExit(Process process)
    {
        process.WaitForExit();
        return process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            _process.StandardInput.WriteLine("quit 0");
            _process.StandardInput.Close();
            if (!_process.WaitForExit(10_000))
            {
                _process.Kill();
            }
        }
        catch (IOException)
        {
            // already gone
        }
        _process.Dispose();
    }
}
