using System.Net;
using Engram.Core.Security;
using Engram.Server;
using Engram.Server.Ui;
using Engram.Tests.Support;

namespace Engram.Tests.Ui;

/// <summary>
/// What a hostile-input probe of the web UI found (session 2026-12-07), each held here: a return path that broke the
/// login, a session cookie that outlived its logout, a 429 without Retry-After, webhook credentials on the admin page,
/// framing and caching headers, and right-to-left overrides in stored names turning the sentences around them.
/// </summary>
public sealed class UiHostileInputTests(OpenUiServer fixture) : IClassFixture<OpenUiServer>
{
    private EngramServer Server => fixture.Server;

    [Theory]
    [InlineData("/ui/é")]
    [InlineData("/ui/graph?entity=Zoë")]
    [InlineData("/ui/\u3002evil")]
    public async Task A_login_whose_return_path_is_not_ascii_goes_to_the_overview_not_a_500(string returnTo)
    {
        await using var server = await EngramServer.StartAsync();
        var key = await server.CreateKeyAsync("acme", Role.Read);
        using var browser = new UiBrowserClient(server.BaseAddress);

        var (login, html) = await browser.SubmitAsync("/ui/login", "/ui/login", ("key", key), ("return", returnTo));

        // Kestrel writes no Location header with a non-ASCII character: the accepted login was a 500.
        login.StatusCode.Should().Be(HttpStatusCode.Redirect, html);
        login.Headers.Location!.OriginalString.Should().Be("/ui");
        (await browser.GetAsync("/ui")).Response.StatusCode.Should().Be(HttpStatusCode.OK, "the login took");
    }

    [Theory]
    [InlineData("/ui/graph?depth=-1")]
    [InlineData("/ui/graph?depth=6")]
    [InlineData("/ui/graph?entity=Dana&depth=0")]
    public async Task A_graph_depth_out_of_range_is_refused_with_or_without_an_entity(string path)
    {
        using var browser = new UiBrowserClient(Server.BaseAddress);

        var (response, html) = await browser.GetAsync(path);

        // The whole-graph page took any depth and wrote it into each entity's link.
        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, html);
        html.Should().Contain("depth");
    }

    [Fact]
    public async Task A_session_cookie_copied_before_logout_ends_with_the_session_lifetime()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var server = await EngramServer.StartAsync(clock: clock);
        var key = await server.CreateKeyAsync("acme", Role.Read);
        using var browser = new UiBrowserClient(server.BaseAddress);
        await browser.SubmitAsync("/ui/login", "/ui/login", ("key", key));
        var copied = browser.Cookies.GetCookies(new Uri(server.BaseAddress, "/ui")).Single(c => c.Name == UiSession.CookieName).Value;
        var (_, overview) = await browser.GetAsync("/ui");
        await browser.PostFormAsync("/ui/logout", [new("_af", UiBrowserClient.Token(overview).Value)]);

        using var replay = new UiBrowserClient(server.BaseAddress);
        replay.Cookies.Add(server.BaseAddress, new Cookie(UiSession.CookieName, copied, "/ui"));
        (await replay.GetAsync("/ui")).Response.StatusCode.Should().Be(HttpStatusCode.OK,
            "the cookie is the whole session: logging out deletes it from the browser, not a copy (the lifetime bounds a copy)");
        clock.Advance(UiSession.Lifetime - TimeSpan.FromMinutes(1));
        (await replay.GetAsync("/ui")).Response.StatusCode.Should().Be(HttpStatusCode.OK);

        clock.Advance(TimeSpan.FromMinutes(2));
        var (expired, _) = await replay.GetAsync("/ui");
        expired.StatusCode.Should().Be(HttpStatusCode.Redirect, "past its lifetime a copied cookie acted as the key for as long as the key lived");
        expired.Headers.Location!.OriginalString.Should().StartWith("/ui/login");
        (await server.ClientWithKey(key).GetAsync("/v1/memories")).StatusCode.Should().Be(HttpStatusCode.OK, "the key itself still works");
    }

    [Fact]
    public async Task The_login_past_the_bad_key_budget_says_when_to_try_again()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.Auth.FailedAttemptsPerMinute = 2);
        await server.CreateKeyAsync("acme", Role.Read);
        using var browser = new UiBrowserClient(server.BaseAddress);
        HttpResponseMessage last = null!;
        for (var i = 0; i < 3; i++)
        {
            (last, _) = await browser.SubmitAsync("/ui/login", "/ui/login", ("key", "egm_not-a-key"));
        }

        last.StatusCode.Should().Be(HttpStatusCode.TooManyRequests);
        last.Headers.RetryAfter.Should().NotBeNull("the API's 429 for bad keys carries Retry-After; the login's did not");
        last.Headers.RetryAfter!.Delta.Should().BePositive();
    }

    [Fact]
    public void The_admin_page_configuration_hides_the_credentials_webhook_urls_carry_in_their_path()
    {
        var options = new EngramServerOptions();
        options.Webhooks.Urls = "https://hooks.slack.com/services/T0AAA/B0BBB/SLACKSECRET1, https://example.org/in?token=QUERYSECRET2";
        options.Alerts.WebhookUrl = "https://discord.com/api/webhooks/123/DISCORDSECRET3";
        options.Memory.WarningWebhook = "https://example.org/warn#FRAGMENTSECRET4";

        var shown = UiAdmin.MaskedConfiguration(options);

        shown.Should().NotContain("SECRET1").And.NotContain("SECRET2").And.NotContain("SECRET3").And.NotContain("SECRET4");
        shown.Should().Contain("https://hooks.slack.com/***").And.Contain("https://discord.com/***", "the host stays, to tell which receiver it is");
        UiAdmin.MaskUrlPaths("http://localhost:11434").Should().Be("http://localhost:11434", "a bare origin holds no credential");
        UiAdmin.MaskUrlPaths("/var/lib/engram").Should().Be("/var/lib/engram");
    }

    [Fact]
    public async Task Pages_refuse_framing_and_the_export_is_never_cached_nor_sniffed()
    {
        using var browser = new UiBrowserClient(Server.BaseAddress);
        foreach (var path in new[] { "/ui", "/ui/login", "/ui/memories?tier=nope" })
        {
            var (page, _) = await browser.GetAsync(path);
            page.Headers.GetValues("X-Frame-Options").Should().Equal(["DENY"], path + ": as CSP frame-ancestors 'none', for browsers without it");
        }

        var (export, _) = await browser.GetAsync("/ui/admin/export");
        export.StatusCode.Should().Be(HttpStatusCode.OK);
        export.Headers.CacheControl!.NoStore.Should().BeTrue("the export is the whole tenant");
        export.Headers.GetValues("X-Content-Type-Options").Should().Equal(["nosniff"]);
    }

    [Fact]
    public async Task An_oversized_or_formless_post_from_a_browser_is_a_page_with_its_status()
    {
        using var browser = new UiBrowserClient(Server.BaseAddress);
        using var raw = new HttpClient { BaseAddress = Server.BaseAddress };
        // Refused by its Content-Length before a byte of it is read; Expect: 100-continue keeps the client from sending
        // the body to a server that has answered already (which may reset the connection under the response).
        using var post = new HttpRequestMessage(HttpMethod.Post, "/ui/memories") { Content = new FormUrlEncodedContent([new("content", new string('a', 2_000_000))]) };
        post.Headers.ExpectContinue = true;
        post.Headers.Accept.ParseAdd("text/html");
        var tooLarge = await raw.SendAsync(post);
        var html = await tooLarge.Content.ReadAsStringAsync();
        tooLarge.StatusCode.Should().Be(HttpStatusCode.RequestEntityTooLarge);
        tooLarge.Content.Headers.ContentType!.MediaType.Should().Be("text/html", "a browser was shown the JSON problem body");
        html.Should().Contain("<!doctype html>").And.Contain("the form is larger than");

        var (formless, _) = await browser.PostFormAsync("/ui/logout", []);
        formless.StatusCode.Should().Be(HttpStatusCode.BadRequest, "an empty form still has no token");
        var json = await raw.PostAsync("/ui/memories", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
        json.StatusCode.Should().Be(HttpStatusCode.UnsupportedMediaType);
        json.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json", "other clients keep the problem body");
    }

    [Fact]
    public async Task Right_to_left_overrides_in_stored_names_stay_inside_them()
    {
        // Inside the names (at an edge a name trims it). A scope value can no longer hold one (it is refused as an
        // identifier), but one stored before that rule still reaches the bulk delete's sentence, as the filter here does.
        const string rlo = "\u202E";
        (await Server.PostJsonAsync("/v1/graph/entities", $$"""{"entities":[{"name":"bidi-from{{rlo}}x","entity_type":"t"},{"name":"bidi-to","entity_type":"t"}]}"""))
            .EnsureSuccessStatusCode();
        (await Server.PostJsonAsync("/v1/graph/relations", $$"""{"relations":[{"from":"bidi-from{{rlo}}x","to":"bidi-to","relation_type":"trusts{{rlo}}x"}]}"""))
            .EnsureSuccessStatusCode();
        using var browser = new UiBrowserClient(Server.BaseAddress);

        var (_, graph) = await browser.GetAsync("/ui/graph?entity=bidi-to");
        graph.Should().Contain("<li><bdi>bidi-from&#x202E;x</bdi> <span class=\"tag\"><bdi>trusts&#x202E;x</bdi></span> <bdi>bidi-to</bdi>",
            "an override left open in one name reversed the rest of the line (the relation and the other name)");

        var (_, dry) = await browser.SubmitAsync("/ui/memories", "/ui/memories/bulk-delete", ("user_id", "bidi-user" + rlo + "x"));
        dry.Should().Contain("memories of user &#x2068;bidi-user&#x202E;x&#x2069; would be deleted", "the dry run's sentence is what the delete is confirmed on");
    }
}
