using System.Net;
using Engram.Core.Security;
using Engram.Core.Storage.Transfer;
using Engram.Server.Ui;
using Engram.Tests.Support;
using FluentAssertions;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;
using Xunit;

namespace Engram.Tests.Ui;

/// <summary>
/// The UI's Data Protection keys live in the store (<see cref="StoreKeyRepository"/>): a login made on one instance is
/// accepted by another on the same PostgreSQL database, and keys an older Engram kept in DATA/ui-keys are taken over.
/// </summary>
public sealed class UiKeyRingTests
{
    [Fact]
    public async Task A_login_on_one_instance_is_accepted_by_another_on_the_same_database()
    {
        using var location = await StoreLocation.CreateAsync(Backend.Postgres);
        await using var first = await EngramServer.StartAsync(location.Value);
        await using var second = await EngramServer.StartAsync(location.Value);
        first.DataPath.Should().NotBe(second.DataPath, "each instance has its own folder: only the store is shared");
        var key = await first.CreateKeyAsync("acme", Role.Admin, name: "ui-admin");

        using var onFirst = new UiBrowserClient(first.BaseAddress);
        var (login, _) = await onFirst.SubmitAsync("/ui/login", "/ui/login", ("key", key), ("return", "/ui"));
        login.StatusCode.Should().Be(HttpStatusCode.Redirect);
        var cookie = onFirst.Cookies.GetCookies(new Uri(first.BaseAddress, "/ui"))[UiSession.CookieName]!.Value;

        using var onSecond = new UiBrowserClient(second.BaseAddress);
        // The second instance learns of the new key within a second (its key cache refresh); until then it is in open mode.
        var anonymous = HttpStatusCode.OK;
        for (var i = 0; i < 50 && anonymous != HttpStatusCode.Redirect; i++)
        {
            await Task.Delay(100);
            anonymous = (await onSecond.GetAsync("/ui")).Response.StatusCode;
        }
        anonymous.Should().Be(HttpStatusCode.Redirect, "keys exist now, and there is no cookie yet: the login page");
        onSecond.Cookies.Add(new Uri(second.BaseAddress, "/ui"), new Cookie(UiSession.CookieName, cookie, "/ui"));
        var (page, html) = await onSecond.GetAsync("/ui");
        page.StatusCode.Should().Be(HttpStatusCode.OK, "the second instance reads the same key ring from the database");
        html.Should().Contain("ui-admin");

        using var forged = new UiBrowserClient(second.BaseAddress);
        forged.Cookies.Add(new Uri(second.BaseAddress, "/ui"), new Cookie(UiSession.CookieName, cookie[..^4] + "AAAA", "/ui"));
        (await forged.GetAsync("/ui")).Response.StatusCode.Should().Be(HttpStatusCode.Redirect);

        var rows = await ((IStoreTransfer)first.Services.GetRequiredService<Core.Storage.IMemoryStore>()).ListMetaAsync(StoreKeyRepository.MetaPrefix);
        rows.Should().ContainSingle().Which.Value.Should().Contain("<key ");
    }

    [Fact]
    public async Task Keys_from_the_old_ui_keys_folder_are_taken_over_so_logins_survive_the_upgrade()
    {
        using var data = new TempDirectory();
        // What an older Engram did: the key ring in DATA/ui-keys, the cookie protected with it.
        var legacy = DataProtectionProvider.Create(new DirectoryInfo(Path.Combine(data.Path, "ui-keys")), b => b.SetApplicationName("Engram"));
        // The session payload is the current one ("{login time}|{key}", purpose v2): what this test holds is the key ring's
        // takeover. A cookie of the key-only v1 payload is no longer a session (it never expired; log in again once).
        var protector = legacy.CreateProtector("Engram.Ui.Session.v2");
        protector.Protect("warm-up"); // creates the key file
        Directory.GetFiles(Path.Combine(data.Path, "ui-keys"), "*.xml").Should().ContainSingle();

        await using var server = await EngramServer.StartAsync(data.Path);
        var key = await server.CreateKeyAsync("acme", Role.Admin, name: "old-login");
        using var browser = new UiBrowserClient(server.BaseAddress);
        browser.Cookies.Add(new Uri(server.BaseAddress, "/ui"), new Cookie(UiSession.CookieName, protector.Protect($"{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}|{key}"), "/ui"));
        var (page, html) = await browser.GetAsync("/ui");
        page.StatusCode.Should().Be(HttpStatusCode.OK, "a cookie protected with the older version's key ring still opens the UI");
        html.Should().Contain("old-login");

        var rows = await ((IStoreTransfer)server.Services.GetRequiredService<Core.Storage.IMemoryStore>()).ListMetaAsync(StoreKeyRepository.MetaPrefix);
        rows.Should().ContainSingle("the file's key was copied into the store, and no new one was made");
    }
}
