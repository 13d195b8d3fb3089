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
        Port = EngramServer.FreePort();
        Server = await EngramServer.StartAsync(Backend, o => Configure(o, Port));
    }

    internal static void Configure(EngramServerOptions options, int port)
    {
        options.Resp.Listen = $"127.0.0.1:{port}";
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
