using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;

namespace Engram.Server.Ui;

/// <summary>
/// The UI's stylesheet and script, embedded in the server assembly and served under a name holding a hash
/// of their content (<c>/ui/assets/app.3f2a….css</c>) with a year-long immutable cache: a new build changes
/// the name, so browsers never keep a stale copy and never ask twice for the same one.
/// </summary>
internal sealed class UiAssets
{
    private readonly Dictionary<string, (byte[] Bytes, string ContentType)> _byName = new(StringComparer.Ordinal);

    public UiAssets()
    {
        CssPath = Add("app", "css", "text/css; charset=utf-8");
        JsPath = Add("app", "js", "text/javascript; charset=utf-8");
    }

    public string CssPath { get; }

    public string JsPath { get; }

    /// <summary>What the UI ships to a browser, in bytes (CSS and JS, uncompressed).</summary>
    public long TotalBytes => _byName.Values.Sum(a => (long)a.Bytes.Length);

    public IReadOnlyDictionary<string, int> Sizes => _byName.ToDictionary(p => p.Key, p => p.Value.Bytes.Length);

    private string Add(string stem, string extension, string contentType)
    {
        using var stream = typeof(UiAssets).Assembly.GetManifestResourceStream($"Engram.Server.Ui.Assets.{stem}.{extension}")
            ?? throw new InvalidOperationException($"the UI asset {stem}.{extension} is not embedded");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        var bytes = copy.ToArray();
        var name = $"{stem}.{Convert.ToHexStringLower(SHA256.HashData(bytes))[..16]}.{extension}";
        _byName[name] = (bytes, contentType);
        return "/ui/assets/" + name;
    }

    public IResult Serve(string name, HttpContext http)
    {
        if (!_byName.TryGetValue(name, out var asset))
        {
            return Http.Problems.For(404, "no such UI asset");
        }
        http.Response.Headers.CacheControl = "public, max-age=31536000, immutable";
        http.Response.Headers.XContentTypeOptions = "nosniff";
        return Results.Bytes(asset.Bytes, asset.ContentType);
    }
}
