using System.Net;
using System.Text.RegularExpressions;
using Engram.Core.Embeddings;
using Engram.Core.Net;
using Engram.Tests.Embeddings.OpenAi;
using Engram.Tests.Support;

namespace Engram.Tests.Limits;

/// <summary>Outbound calls go only to configured hosts, and never follow a redirect elsewhere.</summary>
public sealed partial class OutboundTests
{
    [Fact]
    public async Task TheEmbedder_DoesNotFollowARedirectToAnotherHost_NorSendItTheKey()
    {
        await using var elsewhere = await FakeEmbeddingServer.StartAsync();
        await using var endpoint = await FakeEmbeddingServer.StartAsync();
        endpoint.Handler = (context, _) =>
        {
            context.Response.StatusCode = 307;
            context.Response.Headers.Location = elsewhere.BaseUrl + "/embeddings";
            return Task.CompletedTask;
        };
        using var provider = new OpenAiCompatibleEmbeddingProvider(
            new OpenAiEmbeddingOptions { BaseUrl = endpoint.BaseUrl, Model = "m", ApiKey = "sk-redirected-key-0451", MaxRetries = 2 });

        var act = async () => await provider.EmbedAsync("follow me");

        var refused = (await act.Should().ThrowAsync<EmbeddingException>()).Which;
        refused.IsTransient.Should().BeFalse("a redirect will not go away by retrying");
        refused.Message.Should().Contain("does not follow redirects").And.Contain(new Uri(elsewhere.BaseUrl).Authority);
        endpoint.Requests.Should().ContainSingle("a refusal is not retried");
        elsewhere.Requests.Should().BeEmpty("the redirect target never sees a request, nor the key");
    }

    [Fact]
    public async Task TheServer_WithARedirectingEmbedder_StillAnswers_AndTheTargetSeesNothing()
    {
        await using var elsewhere = await FakeEmbeddingServer.StartAsync();
        await using var endpoint = await FakeEmbeddingServer.StartAsync();
        endpoint.Handler = (context, _) =>
        {
            context.Response.StatusCode = 307; // keeps the method and body, so a followed redirect would reach (and be recorded by) the target
            context.Response.Headers.Location = elsewhere.BaseUrl + "/embeddings";
            return Task.CompletedTask;
        };
        await using var server = await EngramServer.StartAsync(configure: o => o.Embeddings = new EmbeddingSettings
        {
            Provider = EmbeddingSettings.OpenAiProvider,
            OpenAi = new OpenAiEmbeddingOptions { BaseUrl = endpoint.BaseUrl, Model = "m", Dimensions = 8, MaxRetries = 0 },
        });

        await server.CreateAsync(new { content = "a memory to embed" });
        await server.SearchAsync(new { query = "memory" });

        endpoint.Requests.Should().NotBeEmpty();
        elsewhere.Requests.Should().BeEmpty();
    }

    [Fact]
    public async Task TheOutboundClient_RefusesHostsThatAreNotConfigured()
    {
        await using var configured = await FakeEmbeddingServer.StartAsync();
        await using var other = await FakeEmbeddingServer.StartAsync();
        var otherUri = new Uri(other.BaseUrl);
        using var client = OutboundHttp.CreateClient(OutboundPolicy.For([new Uri(configured.BaseUrl)]), TimeSpan.FromSeconds(5));

        // Same host, another port: not the configured endpoint.
        var act = () => client.PostAsync(other.BaseUrl + "/embeddings", new StringContent("{}"));
        (await act.Should().ThrowAsync<OutboundRefusedException>()).Which.Message.Should().Contain(otherUri.Authority).And.Contain("Engram:Outbound:AllowedHosts");
        other.Requests.Should().BeEmpty();

        // Listed in Engram:Outbound:AllowedHosts: allowed.
        using var listed = OutboundHttp.CreateClient(OutboundPolicy.For([new Uri(configured.BaseUrl)], [otherUri.Authority]), TimeSpan.FromSeconds(5));
        var answer = await listed.PostAsync(other.BaseUrl + "/embeddings", new StringContent("""{"model":"m","input":["x"]}"""));
        answer.StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Theory]
    [InlineData("api.openai.com", true)]
    [InlineData("localhost:11434", true)]
    [InlineData("[::1]:8080", true)]
    [InlineData("https://api.openai.com", false)]
    [InlineData("api.openai.com/v1", false)]
    [InlineData("user:pw@host", false)]
    [InlineData("", false)]
    public void AllowedHostEntries_AreHostsWithAnOptionalPort(string entry, bool valid) =>
        new OutboundOptions { AllowedHosts = [entry] }.Validate().Any().Should().Be(!valid);

    /// <summary>
    /// No URL taken from a request is ever fetched: the only outbound clients are made by OutboundHttp, whose
    /// callers pass configured endpoints. A client made anywhere else in the server's code fails this test.
    /// </summary>
    [Fact]
    public void OutboundClients_AreMadeOnlyByOutboundHttp()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Engram.slnx")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("Engram.slnx not found above the test folder");
        }
        var offenders = new[] { "src/Engram.Core", "src/Engram.Server" }
            .SelectMany(folder => Directory.EnumerateFiles(Path.Combine(root, folder), "*.cs", SearchOption.AllDirectories))
            .Where(file => !file.EndsWith(Path.Combine("Net", "OutboundHttp.cs"), StringComparison.Ordinal))
            .Where(file => ClientConstruction().IsMatch(File.ReadAllText(file)))
            .Select(file => Path.GetRelativePath(root, file))
            .ToList();
        offenders.Should().BeEmpty("outbound HTTP goes through Engram.Core.Net.OutboundHttp (allow-listed hosts, no redirects)");
    }

    [GeneratedRegex(@"new\s+(HttpClient|SocketsHttpHandler|HttpClientHandler|WebClient)\s*\(|HttpWebRequest|\bnew\s*\(\s*new\s+SocketsHttpHandler")]
    private static partial Regex ClientConstruction();
}
