using Engram.Benchmarks.Retrieval;

namespace Engram.Benchmarks.Backends;

/// <summary>One backend the <c>backends</c> benchmark compares: where its empty and its loaded stores come from.</summary>
public abstract class BenchBackend
{
    public abstract string Name { get; }

    /// <summary>An empty store.</summary>
    public abstract Task<BenchStore> FreshAsync();

    /// <summary>
    /// A throw-away copy of the store holding memories 0..count-1 of <paramref name="corpus"/>, which is built
    /// on first use and kept under the data root, so a rerun starts in seconds and the cache never sees a write.
    /// </summary>
    public abstract Task<BenchStore> LoadedAsync(CorpusGenerator corpus, int count, int seed);

    protected static async Task RemoveFolderAsync(string path)
    {
        for (var attempt = 1; attempt <= 5; attempt++)
        {
            try
            {
                if (Directory.Exists(path))
                {
                    Directory.Delete(path, recursive: true);
                }
                return;
            }
            catch (IOException) when (attempt < 5)
            {
                // A child process that was just killed may still be letting go of a file.
                await Task.Delay(200);
            }
            catch (IOException)
            {
                // Left behind; a benchmark must not fail on cleanup.
            }
        }
    }
}
