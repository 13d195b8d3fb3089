using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Engram.Server.Webhooks;

/// <summary>
/// The signature every Engram webhook carries: <c>X-Engram-Signature: t=UNIX_SECONDS,v1=HEX</c> where HEX is
/// HMAC-SHA256(secret, "t.body"). A receiver recomputes it over the raw body and refuses old timestamps (replays).
/// </summary>
public static class WebhookSignature
{
    public const string Header = "X-Engram-Signature";
    public const string EventHeader = "X-Engram-Event";
    public const string DeliveryHeader = "X-Engram-Delivery";

    public static string Sign(string secret, long timestamp, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.UTF8.GetBytes(timestamp.ToString(CultureInfo.InvariantCulture) + ".");
        var message = new byte[prefix.Length + body.Length];
        prefix.CopyTo(message, 0);
        body.CopyTo(message.AsSpan(prefix.Length));
        var mac = HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), message);
        return $"t={timestamp.ToString(CultureInfo.InvariantCulture)},v1={Convert.ToHexStringLower(mac)}";
    }

    /// <summary>Checks <paramref name="header"/> against the body, in constant time, and that its timestamp is within <paramref name="tolerance"/> of <paramref name="now"/>.</summary>
    public static bool Verify(string secret, string? header, ReadOnlySpan<byte> body, DateTimeOffset now, TimeSpan tolerance)
    {
        if (header is null)
        {
            return false;
        }
        long? timestamp = null;
        string? v1 = null;
        foreach (var part in header.Split(',', StringSplitOptions.TrimEntries))
        {
            if (part.StartsWith("t=", StringComparison.Ordinal) && long.TryParse(part.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out var t))
            {
                timestamp = t;
            }
            else if (part.StartsWith("v1=", StringComparison.Ordinal))
            {
                v1 = part[3..];
            }
        }
        if (timestamp is not { } ts || v1 is null || Math.Abs(now.ToUnixTimeSeconds() - ts) > tolerance.TotalSeconds)
        {
            return false;
        }
        var expected = Encoding.ASCII.GetBytes(Sign(secret, ts, body).Split("v1=")[1]);
        return CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(v1));
    }

    /// <summary>A signed JSON POST of <paramref name="body"/>.</summary>
    public static HttpRequestMessage Request(Uri url, string secret, byte[] body, string eventName, string deliveryId, DateTimeOffset now)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        request.Headers.TryAddWithoutValidation(Header, Sign(secret, now.ToUnixTimeSeconds(), body));
        request.Headers.TryAddWithoutValidation(EventHeader, eventName);
        request.Headers.TryAddWithoutValidation(DeliveryHeader, deliveryId);
        request.Headers.UserAgent.ParseAdd("Engram-Webhook/1");
        return request;
    }
}
