namespace Engram.Core.Common;

/// <summary>
/// Small state files (webhook deliveries, the alert journal) replaced whole so that a crash or a power cut leaves either
/// the old content or the new, never an empty or half-written file: the new content goes to a temporary file, is synced,
/// renamed over the old one, and the folder is synced so the rename itself survives. A rename without the sync can leave
/// a zero-length file after a power cut on file systems that delay allocation.
/// </summary>
public static class DurableFile
{
    /// <summary>Replaces <paramref name="path"/>'s content with <paramref name="bytes"/>, durably.</summary>
    public static void Replace(string path, ReadOnlySpan<byte> bytes)
    {
        var temp = path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            file.Write(bytes);
            file.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        SyncFolder(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Makes a rename in <paramref name="folder"/> durable: fsync of the folder (Unix; a no-op where folders cannot be opened).</summary>
    public static void SyncFolder(string folder)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        try
        {
            using var handle = File.OpenHandle(folder, FileMode.Open, FileAccess.Read);
            RandomAccess.FlushToDisk(handle);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: the data is synced; only the name might not survive a power cut.
        }
    }
}
