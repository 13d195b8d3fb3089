using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Mcp;

/// <summary>
/// <c>engram mcp</c> over stdio: the handshake never waits for the store, the server's background jobs
/// start after it (TTL sweep, index loading, snapshot on exit), a folder that cannot serve is a clear
/// tool error and a stderr line, and stdout carries nothing but protocol messages.
/// </summary>
public sealed class McpStdioStartupTests
{
    private const string Initialized = """{"jsonrpc":"2.0","method":"notifications/initialized"}""";

    [Fact]
    public async Task After_the_handshake_expired_memories_are_swept_and_the_index_snapshot_is_saved_on_exit()
    {
        using var data = new TempDirectory();
        string expiredId;
        await using (var engine = EngramEngine.OpenSqlite(data.Path))
        {
            var caller = Caller.Default("test");
            await engine.Memories.CreateAsync(caller, new NewMemory { Content = "the office wifi password is on the fridge" });
            expiredId = (await engine.Memories.CreateAsync(caller, new NewMemory { Content = "parked on level 3 today", TtlSeconds = 1 })).Memory.Id;
        }
        await Task.Delay(1500); // past its expiry before the server starts
        var snapshot = Path.Combine(data.Path, IndexSnapshot.FileName);
        File.Exists(snapshot).Should().BeFalse();

        await using (var session = RawStdioSession.Start(["--data", data.Path]))
        {
            (await session.InitializeAsync()).GetProperty("result").GetProperty("serverInfo").GetProperty("name").GetString().Should().Be("engram");
            await session.SendAsync(Initialized);
            // The sweeper's first pass runs as soon as the jobs start: the expired memory's history gains "expired".
            await using var reader = EngramEngine.OpenSqlite(data.Path);
            await UntilAsync(async () => (await reader.Memories.GetHistoryAsync(Caller.Default("test"), expiredId)).Any(h => h.Event == "expired"),
                "the TTL sweeper ran after the handshake");
            await Task.Delay(500); // the index of two memories is built by now
            (await session.CloseAsync()).Should().BeEmpty();
        }
        File.Exists(snapshot).Should().BeTrue("the index snapshot is saved when the stdio server exits");
    }

    [Fact]
    public async Task A_file_where_the_data_folder_should_be_answers_the_handshake_then_tool_errors_and_one_stderr_line()
    {
        using var parent = new TempDirectory();
        var file = Path.Combine(parent.Path, "a-file");
        await File.WriteAllTextAsync(file, "not a folder");

        await using var session = RawStdioSession.Start(["--data", file]);
        (await session.InitializeAsync()).GetProperty("result").GetProperty("protocolVersion").GetString().Should().Be("2025-11-25");
        await session.SendAsync(Initialized);
        var first = await session.RequestAsync(2, "tools/call", """{"name":"memory_store","arguments":{"content":"x"}}""");
        var second = await session.RequestAsync(3, "tools/call", """{"name":"memory_get","arguments":{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}}""");
        foreach (var response in new[] { first, second })
        {
            var result = response.GetProperty("result");
            result.GetProperty("isError").GetBoolean().Should().BeTrue();
            result.GetProperty("content")[0].GetProperty("text").GetString().Should().StartWith($"engram mcp cannot open the data folder '{file}'");
        }
        (await session.CloseAsync()).Should().BeEmpty("stdout carries only the protocol");
        session.Stderr.Should().Contain($"engram mcp cannot open the data folder '{file}'");
        session.Stderr.Split('\n').Count(l => l.Contains("cannot open the data folder", StringComparison.Ordinal)).Should().Be(1, "the reason is logged once, not per call");
    }

    [Fact]
    public async Task A_schema_too_new_is_a_tool_error_naming_the_version()
    {
        using var parent = new TempDirectory();
        var tooNew = Path.Combine(parent.Path, "too-new");
        await using (var store = Core.Storage.Sqlite.SqliteMemoryStore.Open(tooNew))
        {
        }
        using (var connection = Core.Storage.Sqlite.SqliteConnection.Open(Path.Combine(tooNew, "engram.db")))
        {
            connection.Execute("INSERT INTO schema_version(version, applied_at) VALUES (9999, 0)");
        }

        await using var client = await McpConnections.ConnectStdioAsync(["--data", tooNew]);
        var refused = await client.CallAsync("memory_store", """{"content":"x"}""");
        refused.IsError.Should().BeTrue();
        refused.Text().Should().Contain("schema version 9999, newer than this engram understands");
    }

    [Fact]
    public async Task A_misconfiguration_is_a_tool_error_and_a_stderr_line_with_nothing_else_on_stdout()
    {
        using var data = new TempDirectory();
        await using var session = RawStdioSession.Start(["--data", data.Path], new Dictionary<string, string> { ["Engram__SweepIntervalSeconds"] = "0" });
        await session.InitializeAsync();
        await session.SendAsync(Initialized);
        var call = (await session.RequestAsync(2, "tools/call", """{"name":"memory_store","arguments":{"content":"x"}}""")).GetProperty("result");
        call.GetProperty("isError").GetBoolean().Should().BeTrue();
        call.GetProperty("content")[0].GetProperty("text").GetString().Should().Contain("Engram:SweepIntervalSeconds must be at least 1");
        (await session.CloseAsync()).Should().BeEmpty();
        session.Stderr.Should().Contain("Engram:SweepIntervalSeconds must be at least 1");
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            DateTime.UtcNow.Should().BeBefore(deadline, what);
            await Task.Delay(100);
        }
    }
}
