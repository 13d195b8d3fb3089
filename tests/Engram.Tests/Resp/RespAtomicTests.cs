using System.Net.Http.Json;
using System.Text.Json;
using Engram.Tests.Support;

namespace Engram.Tests.Resp;

/// <summary>
/// The read-modify-write commands are atomic on both backends, as in Redis: concurrent clients doing
/// SET … GET and GETDEL on one key see every value exactly once (a value returned twice, or lost, means a
/// read and its write were interleaved by another client), and GETEX racing with SET sets the expiry of
/// exactly the value it returned (checked against the key's history).
/// </summary>
public sealed class RespAtomicTests
{
    private const int Clients = 16;
    private const int Rounds = 25;

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Concurrent_read_modify_writes_see_each_value_once_and_getex_expires_the_value_it_returned(Backend backend)
    {
        await using var server = await EngramServer.StartAsync(backend, RespServerFixture.Configure);
        var port = server.RespPort;
        var clients = new RespClient[Clients];
        for (var i = 0; i < Clients; i++)
        {
            clients[i] = await RespClient.ConnectAsync(port);
        }
        try
        {
            await SetGetAndGetDel_PartitionTheValuesAsync(clients);
            await GetExRacingWithSet_ExpiresTheValueItReturnedAsync(server, clients);
            await SetNxAndExpireNx_OneWinnerAsync(clients);
        }
        finally
        {
            foreach (var client in clients)
            {
                client.Dispose();
            }
        }
    }

    /// <summary>
    /// Half the clients replace the value with SET k v GET, half take it with GETDEL. Atomic, every value
    /// written is returned exactly once: by the SET that replaced it, the GETDEL that took it, or the final GET.
    /// </summary>
    private static async Task SetGetAndGetDel_PartitionTheValuesAsync(RespClient[] clients)
    {
        const string key = "atomic:chain";
        var seen = new List<string>[clients.Length];
        await Task.WhenAll(clients.Select((client, c) => Task.Run(async () =>
        {
            seen[c] = [];
            for (var r = 0; r < Rounds; r++)
            {
                var reply = c % 2 == 0 ? await client.CallAsync("SET", key, $"v{c}-{r}", "GET") : await client.CallAsync("GETDEL", key);
                if (reply is string value)
                {
                    seen[c].Add(value);
                }
            }
        })));
        var all = seen.SelectMany(s => s).ToList();
        if (await clients[0].CallAsync("GET", key) is string last)
        {
            all.Add(last);
        }
        var written = Enumerable.Range(0, clients.Length).Where(c => c % 2 == 0).SelectMany(c => Enumerable.Range(0, Rounds).Select(r => $"v{c}-{r}")).ToList();
        all.Should().OnlyHaveUniqueItems("a value is replaced or taken once");
        all.Should().BeEquivalentTo(written, "no value is lost between a read and its write");
        seen.Where((_, c) => c % 2 == 1).SelectMany(s => s).Should().NotBeEmpty("GETDEL took some values");
    }

    /// <summary>
    /// Half the clients SET new values (no expiry), half GETEX PX with a distinct expiry each. Every
    /// ttl_changed entry of the key's history follows the set whose value that GETEX returned.
    /// </summary>
    private static async Task GetExRacingWithSet_ExpiresTheValueItReturnedAsync(EngramServer server, RespClient[] clients)
    {
        const string key = "atomic:getex";
        (await clients[0].CallAsync("SET", key, "start")).Should().Be("+OK");
        var returned = new List<(string Value, long Ms)>[clients.Length];
        await Task.WhenAll(clients.Select((client, c) => Task.Run(async () =>
        {
            returned[c] = [];
            for (var r = 0; r < Rounds; r++)
            {
                if (c % 2 == 0)
                {
                    (await client.CallAsync("SET", key, $"g{c}-{r}")).Should().Be("+OK");
                }
                else
                {
                    var ms = 1_000_000L + (c * 1000) + r;
                    var value = await client.CallAsync("GETEX", key, "PX", ms.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    value.Should().BeOfType<string>("the key always exists");
                    returned[c].Add(((string)value!, ms));
                }
            }
        })));
        var history = await server.Client.GetFromJsonAsync<JsonElement>($"/v1/kv/{key}?history=true&limit=1000");
        string? current = null;
        var expired = new List<string>();
        foreach (var item in history.GetProperty("items").EnumerateArray())
        {
            switch (item.GetProperty("event").GetString())
            {
                case "created" or "updated":
                    current = item.GetProperty("value").GetString();
                    break;
                case "ttl_changed":
                    expired.Add(current!);
                    break;
            }
        }
        expired.Should().BeEquivalentTo(returned.SelectMany(r => r).Select(r => r.Value),
            "each GETEX changed the expiry of the value it returned, not of a value set in between");
    }

    /// <summary>SET NX and EXPIRE NX from every client at once: one of them wins.</summary>
    private static async Task SetNxAndExpireNx_OneWinnerAsync(RespClient[] clients)
    {
        var set = await Task.WhenAll(clients.Select((client, c) => client.CallAsync("SET", "atomic:nx", $"n{c}", "NX", "GET")));
        var winner = await clients[0].CallAsync("GET", "atomic:nx");
        winner.Should().BeOfType<string>();
        set.Count(r => r is null).Should().Be(1, "SET NX GET returns the value it found: nothing for the one that wrote");
        set.Where(r => r is not null).Should().AllBeEquivalentTo(winner, "the others found the winner's value and wrote nothing");
        var expire = await Task.WhenAll(clients.Select((client, c) => client.CallAsync("EXPIRE", "atomic:nx", (1000 + c).ToString(System.Globalization.CultureInfo.InvariantCulture), "NX")));
        expire.Count(r => r is 1L).Should().Be(1, "EXPIRE NX sets an expiry only on a key that has none");
    }
}
