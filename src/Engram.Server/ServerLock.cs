using Engram.Core.Storage;

namespace Engram.Server;

/// <summary>
/// One server per data folder: an exclusive OS lock on <c>&lt;data&gt;/engram.serve.lock</c>, held for
/// the server's lifetime. Two servers on one folder would each keep their own in-memory index and
/// write the same index snapshot, so the second is refused. The in-process CLI does not take it: it
/// may work beside a running server (SQLite WAL and the busy timeout arbitrate the writes).
/// </summary>
/// <remarks>
/// The lock is the OS's (flock on Unix, a sharing mode on Windows), not the file's existence, so a
/// server killed with SIGKILL or a crash leaves a file that no longer blocks anyone.
/// </remarks>
public sealed class ServerLock : IDisposable
{
    public const string FileName = "engram.serve.lock";

    private readonly FileStream _file;

    private ServerLock(FileStream file, string path)
    {
        _file = file;
        Path = path;
    }

    /// <summary>The lock file's absolute path.</summary>
    public string Path { get; }

    /// <summary>Takes the lock on <paramref name="dataPath"/> (creating the folder), or throws <see cref="ServerLockedException"/>.</summary>
    public static ServerLock Acquire(string dataPath)
    {
        var folder = System.IO.Path.GetFullPath(dataPath);
        var path = System.IO.Path.Combine(folder, FileName);
        try
        {
            Directory.CreateDirectory(folder);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new StoreException($"cannot create the data folder '{folder}': {ex.Message}", ex);
        }
        FileStream file;
        try
        {
            file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new StoreException($"cannot write to the data folder '{folder}': {ex.Message}", ex);
        }
        catch (IOException ex) when (File.Exists(path))
        {
            // The file is there but the OS refused the exclusive open: another process holds it.
            throw new ServerLockedException(folder, path, ex);
        }
        catch (IOException ex)
        {
            throw new StoreException($"cannot create the lock file '{path}': {ex.Message}", ex);
        }
        try
        {
            // For a person looking at the folder (other processes cannot read it while it is held).
            file.SetLength(0);
            file.Write(System.Text.Encoding.UTF8.GetBytes($"engram serve, pid {Environment.ProcessId}, since {DateTimeOffset.UtcNow:O}\n"));
            file.Flush();
        }
        catch (IOException)
        {
            // The note is a courtesy; the lock is what counts.
        }
        return new ServerLock(file, path);
    }

    public void Dispose() => _file.Dispose();
}

/// <summary>Another server holds the data folder's lock.</summary>
public sealed class ServerLockedException(string dataPath, string lockPath, Exception inner)
    : Exception($"another Engram server is already serving {dataPath} (it holds {lockPath}); stop it first, or give this one another --data folder", inner)
{
    public string DataPath { get; } = dataPath;

    public string LockPath { get; } = lockPath;
}
