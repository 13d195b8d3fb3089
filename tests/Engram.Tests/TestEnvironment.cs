using System.Runtime.CompilerServices;

namespace Engram.Tests;

/// <summary>Process-wide settings of the test run, applied before any test starts.</summary>
internal static class TestEnvironment
{
    /// <summary>
    /// Engram's default embedder is the transformer (a model load of seconds and tens of milliseconds a text).
    /// Tests that are not about embeddings run on the built-in GloVe embedder instead, which is microseconds a
    /// text and embeds inline: set as an environment variable, so in-process servers and every child process
    /// (CLI, engram mcp, kill -9 children) see it too. Tests of the transformer select it explicitly.
    /// </summary>
    [ModuleInitializer]
    internal static void UseTheFastEmbedder() => Environment.SetEnvironmentVariable("ENGRAM_EMBEDDINGS", "builtin");
}
