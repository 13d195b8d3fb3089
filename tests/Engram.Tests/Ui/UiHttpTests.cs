using System.Net;
using System.Text.RegularExpressions;
using Engram.Core.Security;
using Engram.Tests.Support;

namespace Engram.Tests.Ui;

/// <summary>One open-mode server (no keys, loopback) for the plain-HTTP UI tests, on SQLite.</summary>
public class OpenUiServer : IAsyncLifetime
{
    protected virtual Backend Backend => Backend.Sqlite;

    public EngramServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await EngramServer.StartAsync(Backend);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>The same on a PostgreSQL database (the test run's server, a fresh database).</summary>
public sealed class PostgresOpenUiServer : OpenUiServer
{
    protected override Backend Backend => Backend.Postgres;
}

public sealed class UiHttpTests(OpenUiServer fixture) : UiHttpChecks(fixture), IClassFixture<OpenUiServer>;

public sealed class PostgresUiHttpTests(PostgresOpenUiServer fixture) : UiHttpChecks(fixture), IClassFixture<PostgresOpenUiServer>;

/// <summary>
/// The web UI without a browser (issue 18): pages render on the server (JS off) from shareable links, hostile
/// memory content is shown as text, every form post needs its antiforgery token, assets are fingerprinted and cached.
/// Run on SQLite (<see cref="UiHttpTests"/>) and on PostgreSQL (<see cref="PostgresUiHttpTests"/>).
/// </summary>
public abstract partial class UiHttpChecks(OpenUiServer fixture)
{
    private EngramServer Server => fixture.Server;

    [Fact]
    public async Task Every_page_renders_on_the_server_and_a_filtered_listing_is_a_link()
    {
        await Server.CreateAsync(new { content = "prefers dark mode in the editor", user_id = "ui-alice", type = "preference", tags = new[] { "ui" } });
        await Server.CreateAsync(new { content = "bob likes tea", user_id = "ui-bob", type = "fact" });
        using var browser = new UiBrowserClient(Server.BaseAddress);

        var (listed, html) = await browser.GetAsync("/ui/memories?user_id=ui-alice&type=preference&agent_id=");
        listed.StatusCode.Should().Be(HttpStatusCode.OK);
        listed.Content.Headers.ContentType!.MediaType.Should().Be("text/html");
        html.Should().Contain("prefers dark mode in the editor").And.NotContain("bob likes tea", "the link's filters apply (a blank field is no filter)");
        html.Should().Contain("value=\"ui-alice\"", "the filter form shows the link's filters");
        listed.Headers.GetValues("Content-Security-Policy").Single().Should().Contain("script-src 'self'");

        foreach (var path in new[] { "/ui", "/ui/search?q=dark+mode&a_semantic=0.2&compare=on", "/ui/graph", "/ui/kv", "/ui/scopes", "/ui/admin", "/ui/login" })
        {
            var (response, page) = await browser.GetAsync(path);
            response.StatusCode.Should().Be(HttpStatusCode.OK, path);
            page.Should().StartWith("<!doctype html>").And.Contain("</html>");
        }
        var (_, search) = await browser.GetAsync("/ui/search?q=dark+mode+editor&user_id=ui-alice&compare=on&b_lexical=1&b_semantic=0");
        search.Should().Contain("prefers dark mode").And.Contain("class=\"bars explain\"").And.Contain("id=\"results-b\"", "two weight settings side by side");
    }

    [Fact]
    public async Task Hostile_memory_content_is_shown_as_text()
    {
        var hostile = "<script>alert('x')</script><img src=x onerror=alert(1)> \"quoted\" & </textarea>";
        var id = (await Server.CreateAsync(new { content = hostile, user_id = "ui-hostile", tags = new[] { "<b>tag</b>" }, entities = new[] { "<svg onload=alert(1)>" } }))
            .GetProperty("id").GetString()!;
        (await Server.PostJsonAsync("/v1/graph/entities", """{"entities":[{"name":"<svg onload=alert(1)>","entity_type":"<b>tag</b>","observations":["<script>alert('o')</script>"]}]}"""))
            .EnsureSuccessStatusCode();
        using var browser = new UiBrowserClient(Server.BaseAddress);
        foreach (var path in new[] { "/ui/memories?user_id=ui-hostile", $"/ui/memories/{id}", "/ui/search?q=alert&user_id=ui-hostile", "/ui", "/ui/graph?entity=%3Csvg%20onload%3Dalert(1)%3E" })
        {
            var (response, html) = await browser.GetAsync(path);
            response.StatusCode.Should().Be(HttpStatusCode.OK, path);
            html.Should().NotContain("<script>alert", path).And.NotContain("<img src=x", path).And.NotContain("<svg onload", path).And.NotContain("<b>tag</b>", path);
            html.Should().Contain("&lt;script&gt;alert(", path);
        }
        var (_, detail) = await browser.GetAsync($"/ui/memories/{id}");
        ScriptTags().Matches(detail).Select(m => m.Value).Should().OnlyContain(s => s.StartsWith("<script src=\"/ui/assets/app.", StringComparison.Ordinal),
            "the only script on the page is the UI's own");
        detail.Should().NotContain("</textarea> \"", "the closing tag inside the content cannot end the edit form's textarea");
    }

    [Theory]
    [InlineData("Zo%C3%ABUi")]      // as stored (NFC)
    [InlineData("Zoe%CC%88Ui")]     // decomposed
    [InlineData("%20Zo%C3%ABUi%20")] // with spaces around it
    public async Task The_graph_page_centres_the_entity_however_its_name_is_spelled(string entity)
    {
        await Server.PostJsonAsync("/v1/graph/entities", """{"entities":[{"name":"Zo\u00ebUi","entity_type":"person"},{"name":"PalUi","entity_type":"person"}]}""");
        await Server.PostJsonAsync("/v1/graph/relations", """{"relations":[{"from":"Zo\u00ebUi","to":"PalUi","relation_type":"knows"}]}""");
        using var browser = new UiBrowserClient(Server.BaseAddress);
        var (response, html) = await browser.GetAsync($"/ui/graph?entity={entity}");
        response.StatusCode.Should().Be(HttpStatusCode.OK, html);
        html.Should().Contain("&quot;center&quot;:true", "the picture marks the entity it was asked for");
    }

    [Fact]
    public async Task Form_posts_without_the_antiforgery_token_are_refused_and_with_it_accepted()
    {
        using var browser = new UiBrowserClient(Server.BaseAddress);
        var (noToken, problem) = await browser.PostFormAsync("/ui/memories", [new("content", "planted without a token")]);
        noToken.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        problem.Should().Contain("antiforgery");
        var (forged, _) = await browser.PostFormAsync("/ui/memories", [new("_af", "forged"), new("content", "planted with a forged token")]);
        forged.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        var (json, _) = await browser.GetAsync("/ui/memories");
        using (var raw = new HttpClient { BaseAddress = Server.BaseAddress })
        {
            (await raw.PostAsync("/ui/memories", new StringContent("{\"content\":\"x\"}", System.Text.Encoding.UTF8, "application/json"))).StatusCode
                .Should().Be(HttpStatusCode.UnsupportedMediaType);
        }
        (await Server.Client.GetStringAsync("/v1/memories?limit=1000")).Should().NotContain("planted");

        var (created, _) = await browser.SubmitAsync("/ui/memories", "/ui/memories", ("content", "added through the form"), ("user_id", "ui-form"), ("tags", "a, b"));
        created.StatusCode.Should().Be(HttpStatusCode.Redirect);
        var location = created.Headers.Location!.ToString();
        location.Should().StartWith("/ui/memories/");
        var (_, page) = await browser.GetAsync(location);
        page.Should().Contain("added through the form").And.Contain("Added.");
    }

    [Fact]
    public async Task A_stale_edit_is_a_conflict_that_keeps_the_typed_text_and_history_shows_each_diff()
    {
        var id = (await Server.CreateAsync(new { content = "the office is on floor 3", user_id = "ui-edit" })).GetProperty("id").GetString()!;
        using var browser = new UiBrowserClient(Server.BaseAddress);
        var (_, page) = await browser.GetAsync($"/ui/memories/{id}");
        var token = UiBrowserClient.Token(page);
        (await Server.PatchJsonAsync($"/v1/memories/{id}", """{"content":"the office is on floor 4"}""")).EnsureSuccessStatusCode();

        var (stale, conflict) = await browser.PostFormAsync($"/ui/memories/{id}", [new(token.Name, token.Value), new("version", "1"), new("content", "the office is on floor 5"), new("tier", "working")]);
        stale.StatusCode.Should().Be(HttpStatusCode.Conflict);
        conflict.Should().Contain("Conflict").And.Contain("now version 2").And.Contain("the office is on floor 5");
        (await Server.Client.GetStringAsync($"/v1/memories/{id}")).Should().Contain("floor 4", "a stale edit changes nothing");

        var (saved, _) = await browser.PostFormAsync($"/ui/memories/{id}", [new(token.Name, token.Value), new("version", "2"), new("content", "the office is on floor 5"), new("tier", "long_term")]);
        saved.StatusCode.Should().Be(HttpStatusCode.Redirect);
        var (_, after) = await browser.GetAsync($"/ui/memories/{id}");
        after.Should().Contain("<del>the office is on floor 4</del> <ins>the office is on floor 5</ins>").And.Contain("<del>the office is on floor 3</del>");

        var (deleted, _) = await browser.PostFormAsync($"/ui/memories/{id}/delete", [new(token.Name, token.Value)]);
        deleted.Headers.Location!.ToString().Should().Be("/ui/memories", "the notice travels in a protected cookie, not the link");
        (await browser.GetAsync($"/ui/memories/{id}")).Response.StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Bulk_delete_by_scope_counts_first_and_deletes_only_when_confirmed()
    {
        for (var i = 0; i < 3; i++)
        {
            await Server.CreateAsync(new { content = $"bulk note {i}", user_id = "ui-bulk" });
        }
        using var browser = new UiBrowserClient(Server.BaseAddress);
        var (_, dry) = await browser.SubmitAsync("/ui/memories", "/ui/memories/bulk-delete", ("user_id", "ui-bulk"));
        dry.Should().Contain("Dry run: <strong>3</strong>");
        (await Server.Client.GetStringAsync("/v1/memories?user_id=ui-bulk")).Should().Contain("bulk note 0", "a dry run deletes nothing");
        var (_, done) = await browser.PostFormAsync("/ui/memories/bulk-delete", [new("_af", UiBrowserClient.Token(dry).Value), new("user_id", "ui-bulk"), new("confirm", "true")]);
        done.Should().Contain("Deleted 3 memories");
        (await Server.Client.GetStringAsync("/v1/memories?user_id=ui-bulk")).Should().NotContain("bulk note");
    }

    [Fact]
    public async Task Assets_are_fingerprinted_and_cached_for_good_and_bad_filters_are_a_page_or_a_problem()
    {
        using var browser = new UiBrowserClient(Server.BaseAddress);
        // The overview (admin: loopback with no keys) shows the last minute's request rate and latency, from the
        // host's own request metric (recorded as a request ends, so the page may need a second look).
        (await Server.Client.GetAsync("/health/live")).EnsureSuccessStatusCode();
        var (_, html) = await browser.GetAsync("/ui");
        for (var attempt = 0; attempt < 50 && html.Contains("<b>none</b><span>latency", StringComparison.Ordinal); attempt++)
        {
            await Task.Delay(20);
            (_, html) = await browser.GetAsync("/ui");
        }
        Regex.IsMatch(html, @"<b>[0-9.]+</b><span>requests/s \(last minute\)</span>").Should().BeTrue(html);
        Regex.IsMatch(html, @"<b>[0-9.]+ / [0-9.]+ ms</b><span>latency p50 / p95 \(last minute\)</span>").Should().BeTrue(html);
        var css = Regex.Match(html, "/ui/assets/app\\.[0-9a-f]{16}\\.css").Value;
        var js = Regex.Match(html, "/ui/assets/app\\.[0-9a-f]{16}\\.js").Value;
        css.Should().NotBeEmpty();
        js.Should().NotBeEmpty();
        foreach (var asset in new[] { css, js })
        {
            var (response, _) = await browser.GetAsync(asset);
            response.StatusCode.Should().Be(HttpStatusCode.OK);
            response.Headers.CacheControl!.ToString().Should().Contain("immutable").And.Contain("max-age=31536000");
        }
        var (bad, page) = await browser.GetAsync("/ui/memories?tier=nope");
        bad.StatusCode.Should().Be(HttpStatusCode.BadRequest);
        page.Should().Contain("<!doctype html>").And.Contain("tier must be one of");
        (await Server.Client.GetAsync("/ui/memories?tier=nope")).Content.Headers.ContentType!.MediaType.Should().Be("application/problem+json", "a non-browser client gets a problem body");
    }

    [Fact]
    public async Task Search_results_stream_after_the_shell_with_the_script_and_come_in_place_without_it()
    {
        await Server.CreateAsync(new { content = "streams the ranked list after the form", user_id = "ui-stream" });
        const string path = "/ui/search?q=ranked+list+form&user_id=ui-stream&compare=on";
        using var noScript = new UiBrowserClient(Server.BaseAddress);
        var (_, whole) = await noScript.GetAsync(path);
        whole.Should().NotContain("<blazor-ssr>", "without the script nothing is streamed").And.NotContain("Searching…");
        foreach (var id in new[] { "results-a", "results-b" })
        {
            Regex.Match(whole, $"<section[^>]*id=\"{id}\".*?</section>", RegexOptions.Singleline).Value.Should().Contain("streams the ranked list").And.Contain("class=\"bars explain\"");
        }

        using var withScript = new UiBrowserClient(Server.BaseAddress);
        withScript.Cookies.Add(Server.BaseAddress, new Cookie("engram_js", "1", "/ui"));
        var (response, streamed) = await withScript.GetAsync(path);
        response.StatusCode.Should().Be(HttpStatusCode.OK);
        var end = streamed.IndexOf("</html>", StringComparison.Ordinal);
        var shell = streamed[..end];
        shell.Should().Contain("name=\"q\"").And.Contain("Searching…").And.NotContain("streams the ranked list", "the shell and the form go out before the results");
        var updates = streamed[end..];
        updates.Should().StartWith("</html><blazor-ssr><template blazor-component-id=").And.Contain("streams the ranked list").And.Contain("class=\"bars explain\"");
        Regex.Matches(updates, "<template blazor-component-id=").Count.Should().Be(2, "each setting's list is streamed");

        var (bad, page) = await noScript.GetAsync("/ui/search?q=x&k=100000");
        bad.StatusCode.Should().Be(HttpStatusCode.BadRequest, "not streamed, a refused search keeps its status");
        page.Should().Contain("k must be between");
        var (late, inline) = await withScript.GetAsync("/ui/search?q=x&k=100000");
        late.StatusCode.Should().Be(HttpStatusCode.OK, "streamed, the status went out with the shell");
        inline[inline.IndexOf("</html>", StringComparison.Ordinal)..].Should().Contain("notice error").And.Contain("k must be between", "the refusal shows where the results would be");
    }

    [GeneratedRegex("<script[^>]*>")]
    private static partial Regex ScriptTags();
}

/// <summary>The UI with API keys: a login form, a protected HttpOnly SameSite=Strict cookie, roles as in REST, logout.</summary>
public sealed class UiAuthTests
{
    [Fact]
    public async Task With_keys_the_ui_needs_a_login_whose_cookie_never_holds_the_key_and_roles_apply()
    {
        await using var server = await EngramServer.StartAsync();
        var adminKey = await server.CreateKeyAsync("acme", Role.Admin, name: "ui-admin");
        var readKey = await server.CreateKeyAsync("acme", Role.Read, name: "ui-reader");
        var id = (await server.ClientWithKey(adminKey).PostAsync("/v1/memories", new StringContent("""{"content":"acme secret plan","user_id":"u"}""", System.Text.Encoding.UTF8, "application/json")))
            .Headers.Location!.ToString().Split('/').Last();

        using var browser = new UiBrowserClient(server.BaseAddress);
        var (anonymous, _) = await browser.GetAsync("/ui/memories?user_id=u");
        anonymous.StatusCode.Should().Be(HttpStatusCode.Redirect);
        anonymous.Headers.Location!.ToString().Should().Be("/ui/login?return=%2Fui%2Fmemories%3Fuser_id%3Du");
        (await server.Client.GetAsync("/ui")).StatusCode.Should().Be(HttpStatusCode.Unauthorized, "a non-browser client gets the API's 401");

        var (bad, badPage) = await browser.SubmitAsync("/ui/login", "/ui/login", ("key", "egm_wrong"), ("return", "/ui"));
        bad.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        badPage.Should().Contain("not valid");
        var (noToken, _) = await browser.PostFormAsync("/ui/login", [new("key", readKey)]);
        noToken.StatusCode.Should().Be(HttpStatusCode.BadRequest, "the login form is protected against login CSRF too");

        var (ok, _) = await browser.SubmitAsync("/ui/login", "/ui/login", ("key", readKey), ("return", "https://evil.example/"));
        ok.StatusCode.Should().Be(HttpStatusCode.Redirect);
        ok.Headers.Location!.ToString().Should().Be("/ui", "a return address off the UI is ignored");
        var setCookie = ok.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("engram_ui=", StringComparison.Ordinal));
        setCookie.Should().Contain("httponly").And.Contain("samesite=strict").And.Contain("path=/ui");
        setCookie.Should().NotContain(readKey).And.NotContain(readKey[4..20], "the cookie holds the key only encrypted");

        var (detail, html) = await browser.GetAsync($"/ui/memories/{id}");
        detail.StatusCode.Should().Be(HttpStatusCode.OK);
        html.Should().Contain("acme secret plan").And.Contain("ui-reader").And.NotContain("id=\"edit\"", "a read key sees no edit form");
        (await browser.GetAsync("/ui/admin")).Response.StatusCode.Should().Be(HttpStatusCode.Forbidden);
        var (readPost, _) = await browser.SubmitAsync("/ui/memories", "/ui/memories", ("content", "planted by a reader"));
        readPost.StatusCode.Should().Be(HttpStatusCode.Forbidden);

        // Another tenant's key sees nothing of acme.
        using var other = new UiBrowserClient(server.BaseAddress);
        await other.SubmitAsync("/ui/login", "/ui/login", ("key", await server.CreateKeyAsync("globex", Role.Admin)));
        (await other.GetAsync($"/ui/memories/{id}")).Response.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await other.GetAsync("/ui/memories")).Html.Should().NotContain("acme secret plan");

        // A forged or tampered cookie is no session.
        using var forger = new UiBrowserClient(server.BaseAddress);
        forger.Cookies.Add(server.BaseAddress, new Cookie("engram_ui", adminKey, "/ui"));
        (await forger.GetAsync("/ui")).Response.StatusCode.Should().Be(HttpStatusCode.Redirect);

        var (_, overview) = await browser.GetAsync("/ui");
        var (loggedOut, _) = await browser.PostFormAsync("/ui/logout", [new("_af", UiBrowserClient.Token(overview).Value)]);
        loggedOut.Headers.Location!.ToString().Should().Be("/ui/login");
        (await browser.GetAsync("/ui")).Response.StatusCode.Should().Be(HttpStatusCode.Redirect, "after logout the cookie is gone");
    }
}
