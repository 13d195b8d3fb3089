using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Security.Cryptography;

namespace Engram.Core.Embeddings.Transformer;

/// <summary>
/// Reads a model's files out of its package dll without loading the assembly: the dll is only a carrier
/// (its code is never run), so the resources are taken straight from the PE image's metadata.
/// </summary>
public static class ModelPackage
{
    /// <summary>The default folder of the model dlls: <c>models/</c> next to Engram's assemblies (the build copies them there).</summary>
    public static string DefaultDirectory => Path.Combine(AppContext.BaseDirectory, "models");

    /// <summary>The bytes of resource <paramref name="resourceName"/> of the dll, checked against <paramref name="sha256"/> (hex).</summary>
    public static byte[] ReadResource(string dllPath, string resourceName, string sha256)
    {
        if (!File.Exists(dllPath))
        {
            throw new EmbeddingException($"the model file '{dllPath}' is missing; it is copied from the NuGet package at build time (rebuild Engram)", isTransient: false);
        }
        byte[]? bytes;
        try
        {
            bytes = Find(dllPath, resourceName);
        }
        catch (Exception ex) when (ex is BadImageFormatException or InvalidOperationException or IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
        {
            throw new EmbeddingException($"the model file '{dllPath}' cannot be read as a model package ({ex.Message}); reinstall or rebuild Engram", isTransient: false, inner: ex);
        }
        if (bytes is null)
        {
            throw new EmbeddingException($"'{dllPath}' has no resource '{resourceName}': not the model package this Engram was built for", isTransient: false);
        }
        var actual = Convert.ToHexString(SHA256.HashData(bytes));
        if (!string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new EmbeddingException($"resource '{resourceName}' of '{dllPath}' has SHA-256 {actual}, expected {sha256}: not the model this Engram was built for (damaged or replaced file; reinstall or rebuild Engram)", isTransient: false);
        }
        return bytes;
    }

    /// <summary>The bytes of the embedded resource named <paramref name="resourceName"/>, or null when the dll has none.</summary>
    private static byte[]? Find(string dllPath, string resourceName)
    {
        using var stream = File.OpenRead(dllPath);
        using var pe = new PEReader(stream);
        var metadata = pe.GetMetadataReader();
        foreach (var handle in metadata.ManifestResources)
        {
            var resource = metadata.GetManifestResource(handle);
            if (!resource.Implementation.IsNil || !metadata.StringComparer.Equals(resource.Name, resourceName))
            {
                continue;
            }
            var directory = pe.PEHeaders.CorHeader!.ResourcesDirectory;
            var section = pe.GetSectionData(directory.RelativeVirtualAddress);
            var reader = section.GetReader((int)resource.Offset, section.Length - (int)resource.Offset);
            return reader.ReadBytes(reader.ReadInt32());
        }
        return null;
    }
}
