using System.Numerics.Tensors;
using Engram.Core.Embeddings;

namespace Engram.Tests.Embeddings;

public sealed class HashEmbeddingProviderTests
{
    [Fact]
    public async Task Is_deterministic_across_instances_and_normalized()
    {
        var a = await new HashEmbeddingProvider(64).EmbedAsync("The cat sat on the mat");
        var b = await new HashEmbeddingProvider(64).EmbedAsync("the CAT sat, on the mat!");
        a.Should().Equal(b, "case and punctuation do not matter");
        a.Should().HaveCount(64);
        TensorPrimitives.Norm(a).Should().BeApproximately(1f, 1e-6f);
        new HashEmbeddingProvider(64).ModelId.Should().Be("hash-fnv1a-64d-v1");
    }

    [Fact]
    public async Task Uses_fnv1a_so_vectors_are_stable_across_processes()
    {
        // FNV-1a 64 over the UTF-16 code units of "cat" (little-endian), computed independently here.
        var hash = 14695981039346656037UL;
        foreach (var c in "cat")
        {
            hash = (hash ^ (byte)c) * 1099511628211UL;
            hash = (hash ^ (byte)(c >> 8)) * 1099511628211UL;
        }
        var vector = await new HashEmbeddingProvider(32).EmbedAsync("cat");
        var expected = new float[32];
        expected[(int)(hash % 32)] = (hash >> 63) == 0 ? 1f : -1f;
        vector.Should().Equal(expected);
    }

    [Fact]
    public async Task Shared_words_make_texts_similar()
    {
        var provider = new HashEmbeddingProvider();
        var a = await provider.EmbedAsync("deploy the billing service on friday");
        var b = await provider.EmbedAsync("the billing service deploy is on friday");
        var c = await provider.EmbedAsync("grandma likes knitting sweaters");
        TensorPrimitives.Dot(a, b).Should().BeGreaterThan(0.7f);
        TensorPrimitives.Dot(a, c).Should().BeLessThan(0.3f);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    [InlineData("?!")]
    public async Task Text_without_words_gives_zeros(string text)
    {
        (await new HashEmbeddingProvider(16).EmbedAsync(text)).Should().OnlyContain(x => x == 0f);
    }

    [Fact]
    public async Task Batch_matches_single_calls()
    {
        var provider = new HashEmbeddingProvider(16);
        var batch = await provider.EmbedBatchAsync(["one two", "three"]);
        batch[0].Should().Equal(await provider.EmbedAsync("one two"));
        batch[1].Should().Equal(await provider.EmbedAsync("three"));
    }

    [Fact]
    public void Rejects_too_few_dimensions()
    {
        FluentActions.Invoking(() => new HashEmbeddingProvider(1)).Should().Throw<ArgumentOutOfRangeException>();
    }
}
