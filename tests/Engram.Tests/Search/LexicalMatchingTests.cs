using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Memories;
using Engram.Core.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Search;

/// <summary>Typos and scripts without spaces, end to end: through SearchService and over REST's /v1/search.</summary>
public sealed class LexicalMatchingTests : IAsyncLifetime
{
    private EngramServer _server = null!;

    public async Task InitializeAsync() => _server = await EngramServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private Task<List<System.Text.Json.JsonElement>> LexicalSearchAsync(string query) =>
        _server.SearchAsync(new { query, k = 5, explain = true, weights = new { semantic = 0, lexical = 1 } });

    [Fact]
    public async Task Rest_FindsAMemoryDespiteTypos_AndRanksAnExactMatchFirst()
    {
        await _server.CreateAsync(new { content = "rotate the deploy key every quarter" });
        await _server.CreateAsync(new { content = "lunch with the design team" });

        var hits = await LexicalSearchAsync("deploi kee");
        hits.Should().ContainSingle();
        hits[0].GetProperty("content").GetString().Should().Be("rotate the deploy key every quarter");
        hits[0].GetProperty("explain").GetProperty("bm25").GetDouble().Should().BeGreaterThan(0);

        // "kee" is absent, "key" is a correction; "rotate" is typed right in the other memory.
        await _server.CreateAsync(new { content = "rotate the tyres" });
        var ranked = await LexicalSearchAsync("rotate kee");
        ranked.Select(h => h.GetProperty("content").GetString()).Should().StartWith("rotate the deploy key every quarter");
        var exactOnly = await LexicalSearchAsync("rotate");
        exactOnly.Select(h => h.GetProperty("content").GetString()).Should().Contain("rotate the tyres");
    }

    [Fact]
    public async Task Rest_FindsJapaneseAndChineseMemories_WithAPositiveLexicalScore()
    {
        await _server.CreateAsync(new { content = "Engram の設定ファイルは /etc/engram にあります" });
        await _server.CreateAsync(new { content = "我们明天去北京开会，请准备报告" });
        await _server.CreateAsync(new { content = "The configuration file lives in the home folder" });

        // Before bigrams, "の設定ファイルは" was one term and the query's "設定ファイル" another: score 0.
        var japanese = await LexicalSearchAsync("設定ファイル");
        japanese.Should().NotBeEmpty();
        japanese[0].GetProperty("content").GetString().Should().StartWith("Engram の設定ファイル");
        japanese[0].GetProperty("explain").GetProperty("bm25").GetDouble().Should().BeGreaterThan(0);

        var chinese = await LexicalSearchAsync("北京开会");
        chinese.Should().NotBeEmpty();
        chinese[0].GetProperty("content").GetString().Should().StartWith("我们明天去北京开会");
        chinese[0].GetProperty("explain").GetProperty("bm25").GetDouble().Should().BeGreaterThan(0);

        var mixed = await LexicalSearchAsync("engram の設定");
        mixed[0].GetProperty("content").GetString().Should().StartWith("Engram の設定ファイル");
    }

    [Fact]
    public async Task SearchService_CorrectsTyposAndMatchesJapanese_AfterARestartFromTheSnapshot()
    {
        using var dir = new TempDirectory();
        var caller = Caller.Default("test");
        await using (var engine = EngramEngine.OpenSqlite(dir.Path, snapshots: true))
        {
            await engine.Memories.CreateBatchAsync(caller, [
                new NewMemory { Content = "rotate the deploy key" },
                new NewMemory { Content = "週末に東京タワーへ行きました" },
                new NewMemory { Content = "water the plants" },
            ]);
            (await TopAsync(engine, "deploi kee")).Should().Be("rotate the deploy key");
            (await engine.SaveSnapshotAsync(force: true)).Should().BeTrue();
        }
        await using (var engine = EngramEngine.OpenSqlite(dir.Path, snapshots: true))
        {
            (await engine.EnsureIndexedAsync()).Source.Should().Be("snapshot");
            (await TopAsync(engine, "deploi kee")).Should().Be("rotate the deploy key");
            (await TopAsync(engine, "東京タワー")).Should().Be("週末に東京タワーへ行きました");
        }

        static async Task<string?> TopAsync(EngramEngine engine, string query)
        {
            var result = await engine.Search.SearchAsync(Caller.Default("test"), new SearchRequest
            {
                Query = query,
                K = 3,
                Explain = true,
                Weights = new SearchWeights { Semantic = 0, Lexical = 1 },
            });
            result.Results.Should().NotBeEmpty(query);
            result.Results[0].Explain!.Bm25.Should().BeGreaterThan(0, query);
            return result.Results[0].Memory.Content;
        }
    }
}
