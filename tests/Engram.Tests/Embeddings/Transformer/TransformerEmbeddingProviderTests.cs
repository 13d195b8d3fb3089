using System.Numerics.Tensors;
using Engram.Core.Embeddings.Transformer;
using FluentAssertions;
using Xunit;

namespace Engram.Tests.Embeddings.Transformer;

public sealed class TransformerEmbeddingProviderTests
{
    public static TheoryData<string> Models => new(TransformerModels.All.Select(m => m.Name));

    [Theory]
    [MemberData(nameof(Models))]
    public async Task A_paraphrase_is_closer_than_an_unrelated_sentence(string name)
    {
        using var embedder = new TransformerEmbeddingProvider(TransformerModels.Find(name)!, new TransformerOptions { Threads = 1 });
        embedder.IsLoaded.Should().BeFalse("nothing loads before the first embed");

        var query = await embedder.EmbedQueryAsync("Where does Melanie like to go camping?");
        var vectors = await embedder.EmbedBatchAsync(["Melanie loves camping trips in the mountains with her kids.", "The quarterly tax report is due on Friday."]);

        embedder.IsLoaded.Should().BeTrue();
        query.Should().HaveCount(384);
        TensorPrimitives.Norm(vectors[0]).Should().BeApproximately(1f, 1e-4f);
        TensorPrimitives.Dot(query, vectors[0]).Should().BeGreaterThan(TensorPrimitives.Dot(query, vectors[1]) + 0.05f);
    }
}
