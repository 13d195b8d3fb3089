using System.Buffers.Text;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Engram.Core.Security;

/// <summary>
/// The shape of an API key: <c>egm_</c> and 43 base64url characters of 32 random bytes. Stored only as
/// HMAC-SHA256 under a per-store secret: a key has 256 bits of entropy, so a fast keyed hash is as good
/// as a slow password hash here, and costs about a microsecond per request instead of milliseconds.
/// The secret means a copy of the key table alone cannot even confirm a guessed key.
/// </summary>
public static class ApiKeyFormat
{
    public const string Marker = "egm_";

    /// <summary>Characters after the marker that are shown as the key's prefix (<c>egm_Ab3dE7gH</c>).</summary>
    public const int PrefixChars = 8;

    private const int SecretBytes = 32;
    private const int EncodedChars = 43; // base64url of 32 bytes, unpadded

    public static int Length => Marker.Length + EncodedChars;

    public static string NewKey()
    {
        Span<byte> random = stackalloc byte[SecretBytes];
        RandomNumberGenerator.Fill(random);
        return Marker + Base64Url.EncodeToString(random);
    }

    public static byte[] NewSecret() => RandomNumberGenerator.GetBytes(SecretBytes);

    /// <summary>The visible prefix of a key (marker included): what lists show and what revoke accepts.</summary>
    public static string PrefixOf(string key) => key[..(Marker.Length + PrefixChars)];

    /// <summary>
    /// The keyed hash of <paramref name="presented"/>, or false when it cannot be a key (wrong length,
    /// marker or characters): such a value never reaches the store. No allocation.
    /// </summary>
    public static bool TryHash(ReadOnlySpan<byte> secret, ReadOnlySpan<char> presented, out KeyHash hash)
    {
        hash = default;
        if (presented.Length != Length || !presented.StartsWith(Marker, StringComparison.Ordinal))
        {
            return false;
        }
        Span<byte> utf8 = stackalloc byte[Length];
        foreach (var c in presented[Marker.Length..])
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            {
                return false;
            }
        }
        Encoding.ASCII.GetBytes(presented, utf8);
        Span<byte> digest = stackalloc byte[32];
        HMACSHA256.HashData(secret, utf8, digest);
        hash = MemoryMarshal.Read<KeyHash>(digest);
        return true;
    }
}

/// <summary>A 32-byte keyed hash as a value (a dictionary key without an array per lookup).</summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct KeyHash(ulong A, ulong B, ulong C, ulong D)
{
    public byte[] ToBytes()
    {
        var bytes = new byte[32];
        MemoryMarshal.Write(bytes, this);
        return bytes;
    }
}
