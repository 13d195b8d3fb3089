using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text.Json;

namespace Engram.Core.Operations;

/// <summary>
/// The backup file format, one file: <c>ENGRAMBK</c> (8 bytes), the format version (uint32 LE, 1), the manifest's
/// length (uint32 LE), the manifest's SHA-256 (32 bytes), the manifest (UTF-8 JSON, <see cref="BackupManifest"/>),
/// then the payload: the SQLite database, gzip-compressed. The manifest holds the payload's length and SHA-256,
/// so every byte of the file is covered by a checksum, and a truncated file is told apart from a damaged one.
/// </summary>
public static class BackupFile
{
    public const string Extension = ".engram-backup";
    public const int FormatVersion = 1;
    public const int MaxManifestBytes = 1 << 20;

    private static readonly byte[] Magic = "ENGRAMBK"u8.ToArray();
    private const int PrefixBytes = 8 + 4 + 4 + 32;

    /// <summary>Backup files are as sensitive as the store (they hold the API keys' hashes and the store's secret): owner only.</summary>
    public static readonly UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Creates <paramref name="path"/> (new, owner-only permissions on Unix) for writing.</summary>
    public static FileStream CreatePrivate(string path, FileMode mode = FileMode.CreateNew)
    {
        var options = new FileStreamOptions { Mode = mode, Access = FileAccess.ReadWrite, Share = FileShare.None, BufferSize = 1 << 16 };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly;
        }
        return new FileStream(path, options);
    }

    /// <summary>
    /// Readies a backup about to be written: its full path (refused when the file exists), its folder (created), and the
    /// prefix for the temporary files written beside it until the backup is complete.
    /// </summary>
    public static (string Path, string TemporaryPrefix) PrepareNew(string outFile)
    {
        outFile = System.IO.Path.GetFullPath(outFile);
        if (File.Exists(outFile))
        {
            throw new IOException($"'{outFile}' exists already; choose another file name");
        }
        var folder = System.IO.Path.GetDirectoryName(outFile)!;
        Directory.CreateDirectory(folder);
        var token = Guid.NewGuid().ToString("N")[..12];
        return (outFile, System.IO.Path.Combine(folder, $".{System.IO.Path.GetFileName(outFile)}.{token}"));
    }

    /// <summary>
    /// Why backups cannot be written into <paramref name="folder"/>, or null when they can. Creates nothing: an existing
    /// folder gets a probe file written and deleted; a missing one needs its nearest existing parent to be a folder that
    /// takes a probe file (the backup creates the rest). Checked at start and before each backup, so a folder that cannot
    /// work is named as such rather than surfacing as a failed store write.
    /// </summary>
    public static string? FolderProblem(string folder)
    {
        folder = System.IO.Path.GetFullPath(folder);
        if (File.Exists(folder))
        {
            return $"the backup folder '{folder}' is a file";
        }
        var existing = folder;
        while (!Directory.Exists(existing))
        {
            var parent = System.IO.Path.GetDirectoryName(existing);
            if (parent is null)
            {
                return $"the backup folder '{folder}' cannot be created: no part of its path exists";
            }
            if (File.Exists(parent))
            {
                return $"the backup folder '{folder}' cannot be created: '{parent}' is a file";
            }
            existing = parent;
        }
        var probe = System.IO.Path.Combine(existing, $".engram-probe-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
            return null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return existing == folder
                ? $"the backup folder '{folder}' cannot be written: {ex.Message}"
                : $"the backup folder '{folder}' cannot be created in '{existing}': {ex.Message}";
        }
    }

    /// <summary>Creates a backup folder, owner-only on Unix when new.</summary>
    public static void CreatePrivateFolder(string folder)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(folder);
        }
        else
        {
            Directory.CreateDirectory(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>Writes the head of a backup: the prefix and the manifest. The payload follows.</summary>
    public static void WriteHead(Stream output, BackupManifest manifest)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(manifest, BackupManifest.Json);
        Span<byte> prefix = stackalloc byte[PrefixBytes];
        Magic.CopyTo(prefix);
        BinaryPrimitives.WriteUInt32LittleEndian(prefix[8..], FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(prefix[12..], (uint)json.Length);
        SHA256.HashData(json, prefix[16..]);
        output.Write(prefix);
        output.Write(json);
    }

    /// <summary>
    /// Reads the head of the backup at <paramref name="input"/>'s position, leaving the stream at the payload.
    /// Throws <see cref="BackupFormatException"/> saying what is wrong.
    /// </summary>
    public static BackupManifest ReadHead(Stream input)
    {
        Span<byte> prefix = stackalloc byte[PrefixBytes];
        if (input.ReadAtLeast(prefix, PrefixBytes, throwOnEndOfStream: false) < PrefixBytes)
        {
            throw new BackupFormatException("the file is too short to be an Engram backup (truncated?)");
        }
        if (!prefix[..8].SequenceEqual(Magic))
        {
            throw new BackupFormatException("the file is not an Engram backup (it does not start with ENGRAMBK)");
        }
        var version = BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..]);
        if (version != FormatVersion)
        {
            throw new BackupFormatException($"the backup has format version {version}; this engram reads version {FormatVersion}");
        }
        var length = BinaryPrimitives.ReadUInt32LittleEndian(prefix[12..]);
        if (length is 0 or > MaxManifestBytes)
        {
            throw new BackupFormatException($"the manifest length ({length} bytes) is not plausible: the head is damaged");
        }
        var json = new byte[length];
        if (input.ReadAtLeast(json, json.Length, throwOnEndOfStream: false) < json.Length)
        {
            throw new BackupFormatException("the file ends inside the manifest (truncated)");
        }
        if (!SHA256.HashData(json).AsSpan().SequenceEqual(prefix[16..]))
        {
            throw new BackupFormatException("the manifest's checksum does not match: the head is damaged");
        }
        try
        {
            return JsonSerializer.Deserialize<BackupManifest>(json, BackupManifest.Json)
                ?? throw new BackupFormatException("the manifest is empty");
        }
        catch (JsonException ex)
        {
            throw new BackupFormatException($"the manifest is not valid JSON: {ex.Message}");
        }
    }

    /// <summary>The manifest of the backup at <paramref name="path"/> (reads only its head).</summary>
    public static BackupManifest ReadManifest(string path)
    {
        using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 4096);
        return ReadHead(input);
    }

    internal static string Hex(ReadOnlySpan<byte> hash) => Convert.ToHexStringLower(hash);

    internal static string Sha256Of(string path, long offset = 0)
    {
        using var input = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        input.Position = offset;
        return Hex(SHA256.HashData(input));
    }
}

/// <summary>A file that is not a sound Engram backup (bad head, checksum, truncation).</summary>
public sealed class BackupFormatException(string message) : Exception(message);

/// <summary>The backup folder cannot take a backup (<see cref="BackupFile.FolderProblem"/>): the operator's setting, not the store.</summary>
public sealed class BackupFolderException(string detail) : Exception(detail);
