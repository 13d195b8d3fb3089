using Engram.Core.Common;
using Engram.Core.Security;
using Engram.Server.Http;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Primitives;

namespace Engram.Server.Ui;

/// <summary>The shared layout of every UI page, its security headers, and the form helpers (antiforgery, bounded form reads).</summary>
internal static class UiPage
{
    private static readonly (string Href, string Label, Role Needs)[] Navigation =
    [
        ("/ui", "Overview", Role.Read), ("/ui/memories", "Memories", Role.Read), ("/ui/search", "Search", Role.Read),
        ("/ui/graph", "Graph", Role.Read), ("/ui/kv", "Key-value", Role.Read), ("/ui/scopes", "Scopes", Role.Read), ("/ui/admin", "Admin", Role.Admin),
    ];

    /// <summary>The whole page: layout, navigation (the current page marked), the body, the fingerprinted assets.</summary>
    public static IResult Render(HttpContext http, string title, string active, HtmlBuilder body, int status = 200, bool navigation = true)
    {
        var assets = http.RequestServices.GetRequiredService<UiAssets>();
        var page = new HtmlBuilder();
        page.Add($"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">");
        page.Add($"<title>{title} · Engram</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"{assets.CssPath}\"></head><body>");
        page.Add($"<a class=\"sr-only\" href=\"#main\">Skip to content</a><header><a class=\"brand\" href=\"/ui\">Engram</a>");
        if (navigation)
        {
            var caller = http.GetCaller();
            page.Add($"<nav aria-label=\"Main\">");
            foreach (var (href, label, needs) in Navigation.Where(n => caller.Role >= n.Needs))
            {
                page.Add($"<a href=\"{href}\"{new Raw(href == active ? " aria-current=\"page\"" : "")}>{label}</a>");
            }
            page.Add($"</nav><div class=\"who\"><span>{caller.Actor} · {caller.Tenant} · {caller.Role.Name()}</span>");
            if (HasSession(http))
            {
                page.Add($"<form method=\"post\" action=\"/ui/logout\" class=\"inline\">{Antiforgery(http)}<button class=\"secondary\" type=\"submit\">Log out</button></form>");
            }
            page.Add($"</div>");
        }
        page.Add($"</header><main id=\"main\"><h1>{title}</h1>");
        page.AddRaw(body.ToString());
        page.Add($"</main><script src=\"{assets.JsPath}\" defer></script></body></html>");
        return Html(http, page.ToString(), status);
    }

    public static IResult Html(HttpContext http, string html, int status = 200)
    {
        var headers = http.Response.Headers;
        headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
        headers.CacheControl = "no-store";
        headers.XContentTypeOptions = "nosniff";
        headers["Referrer-Policy"] = "same-origin";
        return Results.Content(html, "text/html; charset=utf-8", System.Text.Encoding.UTF8, status);
    }

    public static bool HasSession(HttpContext http) => http.Request.Cookies.ContainsKey(UiSession.CookieName);

    /// <summary>The hidden antiforgery field every form carries (the token pair's cookie half is set with it).</summary>
    public static Raw Antiforgery(HttpContext http)
    {
        if (http.Items["ui.af"] is not AntiforgeryTokenSet tokens)
        {
            tokens = http.RequestServices.GetRequiredService<IAntiforgery>().GetAndStoreTokens(http);
            http.Items["ui.af"] = tokens;
        }
        return new Raw($"<input type=\"hidden\" name=\"{HtmlBuilder.Encode(tokens.FormFieldName)}\" value=\"{HtmlBuilder.Encode(tokens.RequestToken)}\">");
    }

    /// <summary>
    /// The posted form, read within the bound of a one-memory body and checked for its antiforgery token: anything
    /// else (no form, a bad or missing token, a malformed body) is a 4xx problem, never a 500.
    /// </summary>
    public static async Task<IFormCollection> ReadFormAsync(HttpContext http, CancellationToken ct)
    {
        var request = http.Request;
        if (!request.HasFormContentType)
        {
            throw new BadHttpRequestException("the UI's forms send application/x-www-form-urlencoded", StatusCodes.Status415UnsupportedMediaType);
        }
        var limit = http.RequestServices.GetRequiredService<RequestBodyLimits>().Memory;
        if (http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } feature)
        {
            feature.MaxRequestBodySize = limit;
        }
        if (request.ContentLength > limit)
        {
            throw new BadHttpRequestException($"the form is larger than {limit} bytes", StatusCodes.Status413PayloadTooLarge);
        }
        IFormCollection form;
        try
        {
            form = await request.ReadFormAsync(new FormOptions { ValueCountLimit = 200, KeyLengthLimit = 256, ValueLengthLimit = (int)Math.Min(int.MaxValue, limit), MultipartBodyLengthLimit = limit }, ct);
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

    public static void Notice(HtmlBuilder html, string? ok, string? error)
    {
        if (ok is not null)
        {
            html.Add($"<p class=\"notice ok\" role=\"status\">{ok}</p>");
        }
        if (error is not null)
        {
            html.Add($"<p class=\"notice error\" role=\"alert\">{error}</p>");
        }
    }

    /// <summary>A page-level error as HTML for browsers (the status kept), so a bad filter or a missing memory reads as a page.</summary>
    public static IResult Error(HttpContext http, int status, string message, bool navigation = true)
    {
        var body = new HtmlBuilder();
        body.Add($"<p class=\"notice error\" role=\"alert\">{message}</p><p><a href=\"/ui\">Back to the overview</a></p>");
        return Render(http, status switch { 404 => "Not found", 403 => "Forbidden", 409 or 412 => "Conflict", _ => "Cannot show this" }, "", body, status, navigation);
    }

    public static bool WantsHtml(HttpContext http) =>
        http.Request.Headers.Accept.Any(a => a is not null && a.Contains("text/html", StringComparison.OrdinalIgnoreCase));
}
