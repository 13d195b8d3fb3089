namespace Engram.Benchmarks.Store;

/// <summary>A fresh data folder per scenario under <c>root</c>, removed afterwards.</summary>
public sealed class BenchDataFolder : IDisposable
{
    /// <summary>The system temp folder; pass <c>--data-root</c> when that is a tmpfs, where fsync costs nothing.</summary>
    public static string DefaultRoot { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "engram-bench");

    public BenchDataFolder(string root)
    {
        Path = System.IO.Path.Combine(root, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
            // Left for the OS temp cleaner; a benchmark must not fail on cleanup.
        }
    }
}
