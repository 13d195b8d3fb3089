using System.Net;
using System.Text.RegularExpressions;

namespace Engram.Tests.Ui;

/// <summary>A cookie-keeping HTTP client that acts like a browser with JavaScript off: asks for HTML, follows no redirect, posts forms with the page's antiforgery token.</summary>
internal sealed partial class UiBrowserClient : IDisposable
{
    private readonly HttpClient _client;

    public UiBrowserClient(Uri baseAddress)
    {
        Cookies = new CookieContainer();
        _client = new HttpClient(new HttpClientHandler { CookieContainer = Cookies, AllowAutoRedirect = false, UseCookies = true }) { BaseAddress = baseAddress };
        _client.DefaultRequestHeaders.Accept.ParseAdd("text/html,application/xhtml+xml");
    }

    public CookieContainer Cookies { get; }

    public async Task<(HttpResponseMessage Response, string Html)> GetAsync(string path)
    {
        var response = await _client.GetAsync(path);
        return (response, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The antiforgery field of the first form in <paramref name="html"/> (name, value).</summary>
    public static (string Name, string Value) Token(string html)
    {
        var match = TokenPattern().Match(html);
        match.Success.Should().BeTrue("the page has a form with an antiforgery token");
        return (match.Groups[1].Value, WebUtility.HtmlDecode(match.Groups[2].Value));
    }

    public async Task<(HttpResponseMessage Response, string Html)> PostFormAsync(string path, IEnumerable<KeyValuePair<string, string>> fields)
    {
        var response = await _client.PostAsync(path, new FormUrlEncodedContent(fields));
        return (response, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Posts <paramref name="content"/> as it is (a body no <see cref="FormUrlEncodedContent"/> would write).</summary>
    public async Task<(HttpResponseMessage Response, string Html)> PostAsync(string path, HttpContent content)
    {
        var response = await _client.PostAsync(path, content);
        return (response, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Loads <paramref name="pagePath"/> for its token, then posts <paramref name="fields"/> with it to <paramref name="action"/>.</summary>
    public async Task<(HttpResponseMessage Response, string Html)> SubmitAsync(string pagePath, string action, params (string Name, string Value)[] fields)
    {
        var (_, page) = await GetAsync(pagePath);
        var (name, value) = Token(page);
        return await PostFormAsync(action, [new(name, value), .. fields.Select(f => new KeyValuePair<string, string>(f.Name, f.Value))]);
    }

    public void Dispose() => _client.Dispose();

    [GeneratedRegex("<input type=\"hidden\" name=\"(_af)\" value=\"([^\"]+)\" />")]
    private static partial Regex TokenPattern();
}
