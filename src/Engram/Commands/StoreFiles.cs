using Engram.Core.Common;
using Engram.Core.Search;
using Engram.Core.Storage.Sqlite;
using Engram.Server;
using Engram.Server.Alerts;
using Engram.Server.Webhooks;

namespace Engram.Cli.Commands;

/// <summary>
/// The files a data folder holds for its store: the database with SQLite's -wal, -shm and -journal beside it, the index
/// snapshot (and the temporary file it is written through), the server's lock file, the alert journal, the webhook
/// state and a restore's staged database. A command that writes a file the user names (<c>export --out</c>,
/// <c>backup --out</c>) refuses these: writing there would destroy the store it reads from.
/// </summary>
internal static class StoreFiles
{
    /// <summary>Names of files of the store; a name that starts with one of <see cref="Prefixes"/> is one too.</summary>
    private static readonly string[] Names = [ServerLock.FileName, AlertJournal.FileName, MemoryEventWebhooks.FileName];

    /// <summary>The database and the files SQLite keeps beside it, the index snapshot and its .tmp, a restore's staged copy.</summary>
    private static readonly string[] Prefixes = [SqliteMemoryStore.FileName, IndexSnapshot.FileName, "." + SqliteMemoryStore.FileName + ".restore-"];

    /// <summary>Throws when <paramref name="target"/> is one of the files of the store in <paramref name="dataFolder"/>.</summary>
    public static void RefuseOwnFile(string dataFolder, string target, string option)
    {
        if (IsStoreFile(dataFolder, target))
        {
            throw new ValidationException(option, $"'{target}' is one of the store's own files in {Path.GetFullPath(dataFolder)}; writing it would destroy the store. " +
                "Give another name, or a file outside the data folder");
        }
    }

    /// <summary>
    /// True when <paramref name="target"/>, with symbolic links resolved, names a file of the store in <paramref name="dataFolder"/>.
    /// File names are compared as the file system of a data folder may (case-insensitively on Windows and macOS).
    /// </summary>
    public static bool IsStoreFile(string dataFolder, string target)
    {
        var file = RealPath(target);
        var folder = Path.GetDirectoryName(file);
        if (folder is null || !string.Equals(folder, RealPath(dataFolder), Comparison))
        {
            return false;
        }
        var name = Path.GetFileName(file);
        return Names.Any(n => string.Equals(name, n, Comparison)) || Prefixes.Any(p => name.StartsWith(p, Comparison));
    }

    private static StringComparison Comparison => OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;

    /// <summary>
    /// The full path with every symbolic link on it resolved, component by component (a link to a folder anywhere on the path,
    /// or the file itself a link to the database). Components that do not exist yet are kept as given.
    /// </summary>
    internal static string RealPath(string path)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        var root = Path.GetPathRoot(full) ?? "";
        var resolved = root;
        foreach (var part in full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries))
        {
            var next = Path.Combine(resolved, part);
            try
            {
                FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
                if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is { } target)
                {
                    // A link's target may itself have links on its path: resolve it again (a cycle ends in the IOException below).
                    next = RealPath(target.FullName);
                }
            }
            catch (IOException)
            {
                // A link cycle or an unreadable link: compare the path as given.
            }
            catch (UnauthorizedAccessException)
            {
            }
            resolved = next;
        }
        return resolved;
    }
}
