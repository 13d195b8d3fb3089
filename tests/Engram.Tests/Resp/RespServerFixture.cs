using Engram.Server;
using Engram.Tests.Support;

namespace Engram.Tests.Resp;

/// <summary>
/// One real Engram server with its RESP endpoint on a free loopback port (no API keys: loopback clients act
/// in tenant default), shared by a test class. Entries written without a TTL never expire here (DefaultTtlSeconds
/// 0), as in Redis, so replies can be compared with Redis's own.
/// </summary>
public class RespServerFixture : IAsyncLifetime
{
    /// <summary>The store the server runs on.</summary>
    protected virtual Backend Backend => Backend.Sqlite;

    public EngramServer Server { get; private set; } = null!;

    public int Port { get; private set; }

    public async Task InitializeAsync()
    {
        Server = await EngramServer.StartAsync(Backend, Configure);
        Port = Server.RespPort;
    }

    /// <summary>RESP on a port the system picks (<see cref="EngramServer.RespPort"/> says which), relaxed, no default TTL.</summary>
    internal static void Configure(EngramServerOptions options)
    {
        options.Resp.Listen = "127.0.0.1:0";
        options.KeyValue.DefaultTtlSeconds = 0;
        options.KeyValue.Durability = Core.Storage.WriteDurability.Relaxed;
    }

    public Task<RespClient> ConnectAsync() => RespClient.ConnectAsync(Port);

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary><see cref="RespServerFixture"/> on a fresh PostgreSQL database.</summary>
public sealed class RespPostgresFixture : RespServerFixture
{
    protected override Backend Backend => Backend.Postgres;
}
