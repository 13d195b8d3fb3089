using Engram.Core.Embeddings.Transformer;

namespace Engram.Tests.Embeddings.Transformer;

/// <summary>Both shipped models, loaded once for a test class (loading one takes seconds).</summary>
public sealed class TransformerModelFixture : IDisposable
{
    private readonly Dictionary<string, TransformerEmbeddingProvider> _providers = new(StringComparer.Ordinal);

    public TransformerEmbeddingProvider Get(string name)
    {
        lock (_providers)
        {
            if (!_providers.TryGetValue(name, out var provider))
            {
                provider = new TransformerEmbeddingProvider(TransformerModels.Find(name)!, new TransformerOptions { Threads = 2 });
                _providers[name] = provider;
            }
            return provider;
        }
    }

    public void Dispose()
    {
        foreach (var provider in _providers.Values)
        {
            provider.Dispose();
        }
    }
}
