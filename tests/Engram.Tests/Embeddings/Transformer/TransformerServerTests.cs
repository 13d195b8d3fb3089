using System.Net;
using Engram.Core;
using Engram.Core.Embeddings;
using Engram.Core.Embeddings.Transformer;
using Engram.Tests.Cli;
using Engram.Tests.Mcp;
using Engram.Tests.Support;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Engram.Tests.Embeddings.Transformer;

/// <summary>
/// The transformer embedder inside the real server and the real <c>engram mcp</c> process: nothing loads the
/// model before the first search or write, a missing or altered model file is a clear error that leaves the
/// server serving lexically, and bad settings stop start-up with a message naming the setting.
/// </summary>
public sealed class TransformerServerTests
{
    private const string Initialized = """{"jsonrpc":"2.0","method":"notifications/initialized"}""";

    [Fact]
    public async Task The_server_starts_without_loading_the_model_and_the_first_search_loads_it()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.Embeddings.Provider = EmbeddingSettings.TransformerProvider);
        var embedder = Embedder(server);

        (await server.Client.GetAsync("/health/ready")).StatusCode.Should().Be(HttpStatusCode.OK);
        embedder.IsLoaded.Should().BeFalse("start-up and health checks must not wait for the model");

        await server.SearchAsync(new { query = "camping with the kids" });

        embedder.IsLoaded.Should().BeTrue("the query was embedded");
    }

    [Fact]
    public async Task The_first_write_loads_the_model_and_the_memory_gets_its_vector()
    {
        await using var server = await EngramServer.StartAsync(configure: o => o.Embeddings.Provider = EmbeddingSettings.TransformerProvider);
        var embedder = Embedder(server);
        embedder.IsLoaded.Should().BeFalse();

        await server.CreateAsync(new { content = "Melanie painted a sunrise over the lake last week." });

        var engine = server.Services.GetRequiredService<EngramEngine>();
        await Until(() => engine.IndexStatistics().Vectors == 1, "the memory is embedded (now or in the background)");
        embedder.IsLoaded.Should().BeTrue();
    }

    [Fact]
    public async Task An_mcp_handshake_does_not_load_the_model_and_the_first_search_does()
    {
        using var data = new TempDirectory();
        await using var session = RawStdioSession.Start(["--data", data.Path], new Dictionary<string, string> { ["ENGRAM_EMBEDDINGS"] = "transformer" });

        await session.InitializeAsync();
        await session.SendAsync(Initialized);
        await session.RequestAsync(2, "tools/list", "{}");
        // Let the background jobs open the (empty) store, as they do right after the handshake.
        await session.RequestAsync(3, "tools/call", """{"name":"memory_get","arguments":{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV"}}""");

        OnnxRuntimeMapped(session.ProcessId).Should().BeFalse("the handshake and a read must not load ONNX Runtime or the model");

        var search = await session.RequestAsync(4, "tools/call", """{"name":"memory_search","arguments":{"query":"where did we go camping"}}""");
        var answer = search.GetProperty("result");
        (answer.TryGetProperty("isError", out var isError) && isError.GetBoolean()).Should().BeFalse(search.ToString());
        OnnxRuntimeMapped(session.ProcessId).Should().BeTrue("the first search embeds its query, " + session.Stderr);
    }

    [Fact]
    public async Task A_tampered_model_file_is_a_clear_error_and_the_server_keeps_serving_lexically()
    {
        using var models = new TempDirectory();
        var dll = Path.Combine(models.Path, TransformerModels.ArcticXs.AssemblyFile);
        File.Copy(Path.Combine(ModelPackage.DefaultDirectory, TransformerModels.ArcticXs.AssemblyFile), dll);
        using (var file = File.Open(dll, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = file.Length / 2; // inside model.onnx, most of the file
            var b = file.ReadByte();
            file.Position--;
            file.WriteByte((byte)(b ^ 0xFF));
        }
        await using var server = await EngramServer.StartAsync(configure: o =>
        {
            o.Embeddings.Provider = EmbeddingSettings.TransformerProvider;
            o.Embeddings.Transformer.ModelDirectory = models.Path;
        });

        var act = async () => await Embedder(server).EmbedAsync("anything");
        (await act.Should().ThrowAsync<EmbeddingException>()).Which.Message.Should().Contain("SHA-256").And.Contain(dll);

        var created = await server.CreateAsync(new { content = "the deploy key for staging expires in March" });
        var results = await server.SearchAsync(new { query = "deploy key staging" });
        results.Select(r => r.GetProperty("id").GetString()).Should().Contain(created.GetProperty("id").GetString());
        // The memory's vector is the background worker's job (a persisted model never embeds on the request
        // path): wait for its first attempt to fail and be recorded.
        var engine = server.Services.GetRequiredService<EngramEngine>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (engine.IndexStatistics().LastEmbeddingError is null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        var stats = engine.IndexStatistics();
        stats.PendingEmbeddings.Should().Be(1, "the memory waits for a vector");
        stats.LastEmbeddingError.Should().Contain("SHA-256");
        (await server.Client.GetAsync("/v1/stats")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task A_missing_model_file_names_the_file()
    {
        using var empty = new TempDirectory();
        using var embedder = new TransformerEmbeddingProvider(TransformerModels.MiniLM, new TransformerOptions { ModelDirectory = empty.Path });

        var act = async () => await embedder.EmbedAsync("anything");

        var error = (await act.Should().ThrowAsync<EmbeddingException>()).Which;
        error.Message.Should().Contain("missing").And.Contain(TransformerModels.MiniLM.AssemblyFile);
        error.IsTransient.Should().BeFalse();
    }

    [Fact]
    public async Task A_file_that_is_not_a_model_package_is_a_clear_error()
    {
        using var models = new TempDirectory();
        await File.WriteAllTextAsync(Path.Combine(models.Path, TransformerModels.ArcticXs.AssemblyFile), "not a dll");
        using var embedder = new TransformerEmbeddingProvider(TransformerModels.ArcticXs, new TransformerOptions { ModelDirectory = models.Path });

        var act = async () => await embedder.EmbedAsync("anything");

        (await act.Should().ThrowAsync<EmbeddingException>()).Which.Message.Should().Contain("cannot be read as a model package");
    }

    [Theory]
    [InlineData("bert-huge", "0", "Transformer:Model must be one of arctic-embed-xs, all-minilm-l6-v2")]
    [InlineData("all-minilm-l6-v2", "-1", "Transformer:Threads must be between 0")]
    [InlineData("arctic-embed-xs", "many", "Threads")]
    public async Task Bad_transformer_settings_stop_engram_serve_with_a_message(string model, string threads, string message)
    {
        using var data = new TempDirectory();

        var result = await CliProcess.RunAsync(["serve", "--data", data.Path, "--urls", $"http://127.0.0.1:{EngramServer.FreePort()}"], environment: new Dictionary<string, string>
        {
            ["ENGRAM_EMBEDDINGS"] = "transformer",
            ["ENGRAM_TRANSFORMER_MODEL"] = model,
            ["ENGRAM_TRANSFORMER_THREADS"] = threads,
        });

        result.ExitCode.Should().Be(1, result.ToString());
        result.Stderr.Should().StartWith("engram: ").And.Contain(message);
    }

    [Fact]
    public async Task A_bad_model_name_fails_the_in_process_server_start()
    {
        var act = async () => await EngramServer.StartAsync(configure: o =>
        {
            o.Embeddings.Provider = EmbeddingSettings.TransformerProvider;
            o.Embeddings.Transformer.Model = "gpt-7";
        });

        (await act.Should().ThrowAsync<OptionsValidationException>()).Which.Message.Should().Contain("got 'gpt-7'");
    }

    private static TransformerEmbeddingProvider Embedder(EngramServer server) =>
        (TransformerEmbeddingProvider)server.Services.GetRequiredService<EngramEngine>().Embedder;

    /// <summary>Whether the process has ONNX Runtime's native library mapped (it is loaded with the first model).</summary>
    private static bool OnnxRuntimeMapped(int pid) =>
        File.ReadAllText($"/proc/{pid}/maps").Contains("libonnxruntime", StringComparison.Ordinal);

    private static async Task Until(Func<bool> condition, string because)
    {
        for (var i = 0; i < 600 && !condition(); i++)
        {
            await Task.Delay(100);
        }
        condition().Should().BeTrue(because);
    }
}
