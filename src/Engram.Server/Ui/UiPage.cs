using System.Buffers;
using System.Globalization;
using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Primitives;
using Microsoft.Net.Http.Headers;

namespace Engram.Server.Ui;

/// <summary>How every UI page is rendered (a Razor component under the security headers), and the form helpers (antiforgery, bounded form reads).</summary>
internal static class UiPage
{
    /// <summary>
    /// The page component <typeparamref name="TPage"/> rendered statically (the same renderer as MapRazorComponents) with its
    /// model, under the UI's security headers. Each page is one minimal-API route, so its access rule stays on the route.
    /// </summary>
    public static RazorComponentResult Render<TPage>(HttpContext http, object? model, int status = 200, bool stream = false)
        where TPage : IComponent
    {
        var headers = http.Response.Headers;
        headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
        headers.CacheControl = "no-cache, no-store"; // as antiforgery sets it (it warns when it has to override anything else)
        headers.XContentTypeOptions = "nosniff";
        // frame-ancestors 'none' for browsers without CSP level 2; set first, so antiforgery does not add its SAMEORIGIN.
        headers.XFrameOptions = "DENY";
        headers["Referrer-Policy"] = "same-origin";
        return new RazorComponentResult<TPage>(new Dictionary<string, object?> { ["Model"] = model })
        {
            StatusCode = status,
            ContentType = "text/html; charset=utf-8",
            PreventStreamingRendering = !stream,
        };
    }

    public static bool HasSession(HttpContext http) => http.Request.Cookies.ContainsKey(UiSession.CookieName);

    /// <summary>
    /// Whether this browser runs the UI's script (app.js sets the cookie): only then are slow parts streamed, since
    /// a streamed part arrives as a template that script puts in place; without it the page waits and comes whole.
    /// </summary>
    public static bool Streams(HttpContext http) => http.Request.Cookies.ContainsKey("engram_js");

    /// <summary>
    /// The posted form, read within the bound of a one-memory body and checked for its antiforgery token: anything
    /// else (no form, a bad or missing token, a malformed body) is a 4xx problem, never a 500.
    /// </summary>
    public static async Task<IFormCollection> ReadFormAsync(HttpContext http, CancellationToken ct)
    {
        var request = http.Request;
        if (!request.HasFormContentType || !MediaTypeHeaderValue.TryParse(request.ContentType, out var type)
            || !type.MediaType.Equals("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase))
        {
            throw new BadHttpRequestException("the UI's forms send application/x-www-form-urlencoded", StatusCodes.Status415UnsupportedMediaType);
        }
        if (type.Charset.HasValue && !type.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase))
        {
            throw new BadHttpRequestException($"the UI's forms are UTF-8, not {type.Charset}", StatusCodes.Status415UnsupportedMediaType);
        }
        var limit = http.RequestServices.GetRequiredService<RequestBodyLimits>().Memory;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = limit;
        }
        var tooLarge = new BadHttpRequestException($"the form is larger than {limit} bytes", StatusCodes.Status413PayloadTooLarge);
        if (request.ContentLength > limit)
        {
            throw tooLarge;
        }
        IFormCollection form;
        try
        {
            // Read whole first: the form reader decodes bytes that are not UTF-8 as U+FFFD without a word, so "caf%E9" was
            // stored as "caf\uFFFD" while the same bytes in a query string are refused (QueryEncoding).
            var body = (await BodyBytes.ReadAsync(request.Body, request.ContentLength, limit, _ => tooLarge, ct)).Sequence().ToArray();
            if (FormEncoding.FindInvalidField(body) is { } field)
            {
                throw new ValidationException(field, $"the form's field '{field}' is not UTF-8 once percent-decoded; reload the page and send it again");
            }
            request.Body = new MemoryStream(body, writable: false);
            form = await request.ReadFormAsync(new FormOptions { ValueCountLimit = 200, KeyLengthLimit = 256, ValueLengthLimit = (int)Math.Min(int.MaxValue, limit) }, ct);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw tooLarge;
        }
        catch (InvalidDataException e)
        {
            throw new ValidationException("form", "the form could not be read: " + e.Message);
        }
        catch (IOException)
        {
            throw new ValidationException("form", "the form could not be read");
        }
        try
        {
            await http.RequestServices.GetRequiredService<IAntiforgery>().ValidateRequestAsync(http);
        }
        catch (AntiforgeryValidationException)
        {
            throw new ValidationException("__RequestVerificationToken", "the form's antiforgery token is missing or invalid; reload the page and try again");
        }
        return form;
    }

    /// <summary>A form field, trimmed; null when absent or blank. Given twice is refused.</summary>
    public static string? Field(IFormCollection form, string name)
    {
        if (!form.TryGetValue(name, out var values))
        {
            return null;
        }
        if (values.Count > 1)
        {
            throw new ValidationException(name, $"'{name}' is given {values.Count} times");
        }
        var value = values[0]?.Trim();
        return string.IsNullOrEmpty(value) ? null : value;
    }

    /// <summary>The fields of the UI's GET forms: an HTML form sends every one, filled or not.</summary>
    private static readonly HashSet<string> FormFields =
    [
        "user_id", "agent_id", "session_id", "namespace", "type", "tier", "tags", "tags_match", "entity", "source", "created_after", "created_before",
        "updated_after", "updated_before", "limit", "cursor", "q", "k", "compare", "pattern", "key", "depth", "return",
        "a_semantic", "a_lexical", "a_recency", "a_importance", "a_entity", "b_semantic", "b_lexical", "b_recency", "b_importance", "b_entity",
    ];

    /// <summary>The query without the blank fields of the UI's own forms (taken as absent); anything else is kept, so it is refused as REST refuses it.</summary>
    public static QueryCollection Filled(IQueryCollection query) =>
        new(query.Where(p => !(FormFields.Contains(p.Key) || p.Key.StartsWith("metadata.", StringComparison.Ordinal)) || p.Value.Any(v => !string.IsNullOrEmpty(v)))
            .ToDictionary(p => p.Key, p => FormFields.Contains(p.Key) ? new StringValues([.. p.Value.Where(v => !string.IsNullOrEmpty(v))]) : p.Value));

    public static string Query(params (string Key, string? Value)[] parts) =>
        string.Join('&', parts.Where(p => !string.IsNullOrEmpty(p.Value)).Select(p => Uri.EscapeDataString(p.Key) + "=" + Uri.EscapeDataString(p.Value!)));

    public static IResult SeeOther(string location) => Results.Redirect(location, permanent: false, preserveMethod: false);

    /// <summary>A page-level error as HTML for browsers (the status kept), so a bad filter or a missing memory reads as a page.</summary>
    public static IResult Error(HttpContext http, int status, string message, bool navigation = true) =>
        Render<ErrorPage>(http, new ErrorPage.Data(status, message, navigation), status);

    /// <summary>A time as the UI shows it (UTC, to the second); empty when there is none.</summary>
    public static string Time(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) ?? "";

    public static string Number(double value, string format = "0.###") => value.ToString(format, CultureInfo.InvariantCulture);

    public static bool WantsHtml(HttpContext http) =>
        http.Request.Headers.Accept.Any(a => a is not null && a.Contains("text/html", StringComparison.OrdinalIgnoreCase));
}
