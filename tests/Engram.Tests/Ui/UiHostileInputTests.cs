using System.Net;
using Engram.Core.Security;
using Engram.Server;
using Engram.Server.Http;
using Engram.Server.Ui;
using Engram.Tests.Support;

namespace Engram.Tests.Ui;

/// <summary>
/// What a hostile-input probe of the web UI found (session 2026-12-07), each held here: a return path that broke the
/// login, a session cookie that outlived its logout, a 429 without Retry-After, webhook credentials on the admin page,
/// framing and caching headers, and right-to-left overrides in stored names turning the sentences around them; and what
/// it left open (session 51): antiforgery tokens not bound to the login, refusals before the UI code reaching a browser
/// as JSON, invalid UTF-8 in a form body replaced without a word, a success notice that echoed the link, and the
/// overview and whole-graph pages reading the whole graph.
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

    [Fact]
    public async Task An_antiforgery_token_from_one_login_is_refused_on_the_post_of_another()
    {
        await using var server = await EngramServer.StartAsync();
        var keyA = await server.CreateKeyAsync("acme", Role.Write, name: "af-attacker");
        var keyB = await server.CreateKeyAsync("acme", Role.Write, name: "af-victim");
        using var attacker = new UiBrowserClient(server.BaseAddress);
        using var victim = new UiBrowserClient(server.BaseAddress);
        await attacker.SubmitAsync("/ui/login", "/ui/login", ("key", keyA));
        await victim.SubmitAsync("/ui/login", "/ui/login", ("key", keyB));
        var (_, attackerPage) = await attacker.GetAsync("/ui/memories");
        var token = UiBrowserClient.Token(attackerPage).Value;
        var ui = new Uri(server.BaseAddress, "/ui");
        var attackerCookie = attacker.Cookies.GetCookies(ui).Single(c => c.Name == "engram_af").Value;

        // The attacker plants their own antiforgery cookie in the victim's browser (a sibling host, a plain-HTTP answer)
        // and makes it post their token: the pair matches, and it was accepted under the victim's login.
        victim.Cookies.Add(server.BaseAddress, new Cookie("engram_af", attackerCookie, "/ui"));
        var (crossed, html) = await victim.PostFormAsync("/ui/memories", [new("_af", token), new("content", "planted across logins")]);

        crossed.StatusCode.Should().Be(HttpStatusCode.BadRequest, html);
        crossed.Content.Headers.ContentType!.MediaType.Should().Be("text/html");
        html.Should().Contain("antiforgery");
        (await server.ClientWithKey(keyB).GetStringAsync("/v1/memories")).Should().NotContain("planted across logins");
        var (own, _) = await attacker.PostFormAsync("/ui/memories", [new("_af", token), new("content", "added by its own login")]);
        own.StatusCode.Should().Be(HttpStatusCode.Redirect, "the same login's token is accepted");
    }

    [Theory]
    [InlineData("/memories?user_id=a%00b", 400, "NUL")]
    [InlineData("/memories?user_id=%FF", 400, "not UTF-8")]
    [InlineData("/memories/%FF", 400, "not UTF-8")]
    [InlineData("/memories?user_id=LONG", 414, "the limit is")]
    public async Task A_refusal_before_the_ui_code_is_a_page_for_a_browser_and_a_problem_body_for_the_api(string path, int status, string says)
    {
        path = path.Replace("LONG", new string('a', RequestLimits.MaxTargetBytes + 10), StringComparison.Ordinal);
        using var browser = new UiBrowserClient(Server.BaseAddress);

        var (page, html) = await browser.GetAsync("/ui" + path);
        var (api, body) = await browser.GetAsync("/v1" + path);

        ((int)page.StatusCode).Should().Be(status, html);
        page.Content.Headers.ContentType!.MediaType.Should().Be("text/html", "a browser was shown the JSON problem body");
        html.Should().StartWith("<!doctype html>").And.Contain(says);
        page.Headers.GetValues("X-Frame-Options").Should().Equal(["DENY"]);
        ((int)api.StatusCode).Should().Be(status, body);
        api.Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json", "the API keeps its problem body, Accept or not");
        using var raw = new HttpClient { BaseAddress = Server.BaseAddress };
        (await raw.GetAsync("/ui" + path)).Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json", "a client that does not ask for HTML");
    }

    /// <summary>
    /// Kestrel refuses a NUL in the path before any middleware runs. (A target past its own line limit is refused before its
    /// headers are surely read, so it gets the API's problem body whatever the client accepts: RequestCorpusTests.)
    /// </summary>
    [Theory]
    [InlineData("/memories/a%00b", 400)]
    public async Task A_refusal_kestrel_makes_itself_is_a_page_for_a_browser_under_ui(string target, int status)
    {
        var timeout = TimeSpan.FromSeconds(10);

        var page = await Hostile.RawHttp.RawAsync(Server.BaseAddress, "GET", "/ui" + target, "Accept: text/html,application/xhtml+xml\r\n", "", timeout);
        var api = await Hostile.RawHttp.RawAsync(Server.BaseAddress, "GET", "/v1" + target, "Accept: text/html\r\n", "", timeout);

        page.Status.Should().Be(status, page.Body);
        page.ContentType.Should().StartWith("text/html", "a browser was shown the JSON problem body");
        page.Body.Should().StartWith("<!doctype html>").And.Contain("Back to the overview");
        api.Status.Should().Be(status);
        api.ContentType.Should().Be("application/problem+json");
    }

    [Theory]
    [InlineData("content=bad%FFbytes&user_id=ui-utf8")]
    [InlineData("content=ok&user_id=ui-utf8%C3")]
    [InlineData("content=raw{FF}byte&user_id=ui-utf8")]
    public async Task A_form_body_that_is_not_utf8_is_refused_not_stored_with_replacement_characters(string fields)
    {
        using var browser = new UiBrowserClient(Server.BaseAddress);
        var (_, form) = await browser.GetAsync("/ui/memories");
        var token = Uri.EscapeDataString(UiBrowserClient.Token(form).Value);
        byte[] body = [.. System.Text.Encoding.ASCII.GetBytes($"_af={token}&"), .. fields.Split("{FF}").SelectMany((part, i) =>
            i == 0 ? System.Text.Encoding.ASCII.GetBytes(part) : [0xFF, .. System.Text.Encoding.ASCII.GetBytes(part)])];
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-www-form-urlencoded");

        var (response, html) = await browser.PostAsync("/ui/memories", content);

        response.StatusCode.Should().Be(HttpStatusCode.BadRequest, html);
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/html");
        html.Should().Contain("UTF-8");
        (await Server.Client.GetStringAsync("/v1/memories?user_id=ui-utf8")).Should().NotContain("\uFFFD", "the form was stored with U+FFFD in place of the bytes")
            .And.NotContain("\\ufffd");
    }

    [Theory]
    [InlineData("deleted")]
    [InlineData("added")]
    public async Task A_success_notice_never_echoes_the_link(string parameter)
    {
        using var browser = new UiBrowserClient(Server.BaseAddress);

        var (response, html) = await browser.GetAsync($"/ui/memories?{parameter}=" + Uri.EscapeDataString("your account. Call +1 555 0100 to restore it"));

        response.StatusCode.Should().Be(HttpStatusCode.OK, "an old link still opens the listing");
        html.Should().NotContain("555 0100", "a link made the page say \"Deleted <any text>\"");
        html.Should().NotContain("class=\"notice ok\"");
    }

    [Fact]
    public async Task A_delete_is_confirmed_once_with_the_id_the_server_deleted()
    {
        var id = (await Server.CreateAsync(new { content = "to be deleted through the form", user_id = "ui-flash" })).GetProperty("id").GetString()!;
        using var browser = new UiBrowserClient(Server.BaseAddress);
        var (_, detail) = await browser.GetAsync($"/ui/memories/{id}");
        var (deleted, _) = await browser.PostFormAsync($"/ui/memories/{id}/delete", [new("_af", UiBrowserClient.Token(detail).Value)]);
        deleted.StatusCode.Should().Be(HttpStatusCode.Redirect);
        var (_, listing) = await browser.GetAsync(deleted.Headers.Location!.OriginalString);
        var (_, again) = await browser.GetAsync(deleted.Headers.Location!.OriginalString);

        listing.Should().Contain($"Deleted {id}.");
        again.Should().NotContain($"Deleted {id}.", "the notice is shown once, after the delete");
    }

    [Fact]
    public async Task The_whole_graph_page_shows_a_bounded_page_and_says_how_many_there_are()
    {
        await using var server = await EngramServer.StartAsync();
        var entities = Enumerable.Range(0, UiGraph.PageSize + 12).Select(i => new { name = $"node-{i:D3}", entity_type = "t" }).ToList();
        (await server.PostJsonAsync("/v1/graph/entities", System.Text.Json.JsonSerializer.Serialize(new { entities }))).EnsureSuccessStatusCode();
        (await server.PostJsonAsync("/v1/graph/relations", """{"relations":[{"from":"node-000","to":"node-001","relation_type":"knows"}]}"""))
            .EnsureSuccessStatusCode();
        using var browser = new UiBrowserClient(server.BaseAddress);

        var (_, graph) = await browser.GetAsync("/ui/graph");
        var (_, overview) = await browser.GetAsync("/ui");

        graph.Should().Contain($"Showing {UiGraph.PageSize} of {entities.Count} entities");
        System.Text.RegularExpressions.Regex.Matches(graph, "<tr><td><a href=\"/ui/graph\\?entity=").Count.Should().Be(UiGraph.PageSize);
        graph.Should().Contain($"node-{entities.Count - 1:D3}", "the most recently created come first").And.NotContain("entity=node-000&", "the oldest are past the page");
        var (_, named) = await browser.GetAsync("/ui/graph?entity=node-000");
        named.Should().Contain("node-001", "naming an entity narrows to its neighbours");
        overview.Should().MatchRegex($"<b>{entities.Count}</b><span>entities</span>").And.MatchRegex("<b>1</b><span>relations</span>");
    }

    [Fact]
    public async Task The_overview_counts_every_live_key_past_a_thousand()
    {
        await using var server = await EngramServer.StartAsync();
        // Before, the overview listed up to 1,000 keys and showed "1000+".
        for (var batch = 0; batch < 11; batch++)
        {
            var items = Enumerable.Range(batch * 100, 100).Select(i => new { key = $"ov:{i:D4}", value = (object)i }).ToList();
            (await server.PostJsonAsync("/v1/kv/mset", System.Text.Json.JsonSerializer.Serialize(new { items }))).EnsureSuccessStatusCode();
        }
        (await server.Client.DeleteAsync("/v1/kv/ov:0000")).EnsureSuccessStatusCode();
        using var browser = new UiBrowserClient(server.BaseAddress);

        var (_, overview) = await browser.GetAsync("/ui");

        overview.Should().Contain("<b>1,099</b><span>key-value keys</span>");
    }
}
