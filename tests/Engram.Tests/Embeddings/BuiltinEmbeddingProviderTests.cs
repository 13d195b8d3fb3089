using System.Numerics.Tensors;
using Engram.Core.Embeddings;

namespace Engram.Tests.Embeddings;

public sealed class BuiltinEmbeddingProviderTests
{
    private static readonly BuiltinEmbeddingProvider Provider = BuiltinEmbeddingProvider.Default;

    [Fact]
    public void Reports_its_model_and_dimensions()
    {
        Provider.ModelId.Should().Be("builtin-glove6b-100d-int8-v1");
        Provider.Dimensions.Should().Be(100);
        new BuiltinEmbeddingProvider(WordVectorModel.Embedded, new() { Weighting = WordWeighting.Mean }).ModelId
            .Should().Be("builtin-glove6b-100d-int8-v1+mean", "vectors made with other settings must not pass for the default's");
        new BuiltinEmbeddingProvider(WordVectorModel.Embedded, new() { RemoveCommonComponent = true }).ModelId
            .Should().Be("builtin-glove6b-100d-int8-v1+sif0.001-cc");
    }

    [Fact]
    public async Task Similar_sentences_are_closer_than_unrelated_ones()
    {
        var cat = await Provider.EmbedAsync("the cat sat on the mat");
        var kitten = await Provider.EmbedAsync("a kitten rested on the rug");
        var revenue = await Provider.EmbedAsync("quarterly revenue grew 5%");

        var related = Dot(cat, kitten);
        var unrelated = Dot(cat, revenue);
        related.Should().BeGreaterThan(unrelated + 0.2f, $"related {related:F3}, unrelated {unrelated:F3}");
        Dot(kitten, revenue).Should().BeLessThan(related);
    }

    [Fact]
    public async Task A_question_is_closest_to_the_turn_that_answers_it()
    {
        string[] turns =
        [
            "Caroline: I went to a support group for transgender people yesterday, it was so powerful.",
            "Melanie: The kids and I painted a sunset at the lake last weekend.",
            "Caroline: My new job at the bank starts next month.",
        ];
        var vectors = await Provider.EmbedBatchAsync(turns);
        var question = await Provider.EmbedAsync("What did Melanie paint?");
        var best = Enumerable.Range(0, turns.Length).MaxBy(i => Dot(question, vectors[i]));
        best.Should().Be(1);
    }

    [Theory]
    [InlineData("the cat sat on the mat")]
    [InlineData("QUARTERLY REVENUE GREW")]
    [InlineData("one")]
    [InlineData("Don't panic, it's only a test!")]
    public async Task Vectors_are_unit_length(string text)
    {
        var vector = await Provider.EmbedAsync(text);
        vector.Should().HaveCount(100);
        TensorPrimitives.Norm(vector).Should().BeApproximately(1f, 1e-5f);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   \t\r\n ")]
    [InlineData("zqxjv qqzzv")]
    [InlineData("12345 678")]
    [InlineData("?!.,")]
    public async Task Text_without_known_words_gives_a_zero_vector(string text)
    {
        var vector = await Provider.EmbedAsync(text);
        vector.Should().HaveCount(100).And.OnlyContain(x => x == 0f);
    }

    [Fact]
    public async Task Long_text_is_embedded_and_normalized()
    {
        var text = string.Join(' ', Enumerable.Repeat("the quick brown fox jumps over the lazy dog.", 200));
        var vector = await Provider.EmbedAsync(text);
        TensorPrimitives.Norm(vector).Should().BeApproximately(1f, 1e-5f);
        Dot(vector, await Provider.EmbedAsync("the quick brown fox jumps over the lazy dog.")).Should().BeApproximately(1f, 1e-4f);
    }

    [Fact]
    public async Task Same_text_gives_the_same_vector_and_batch_matches_single_calls()
    {
        string[] texts = ["the cat sat on the mat", "", "a kitten rested on the rug", "Don't panic"];
        var batch = await Provider.EmbedBatchAsync(texts);
        batch.Should().HaveCount(texts.Length);
        for (var i = 0; i < texts.Length; i++)
        {
            batch[i].Should().Equal(await Provider.EmbedAsync(texts[i]));
        }
    }

    [Fact]
    public void Is_thread_safe()
    {
        var texts = Enumerable.Range(0, 400).Select(i => $"memory number {i}: the cat sat on mat {i % 7} near the kitten").ToArray();
        var expected = texts.Select(t => Provider.Embed(t)).ToArray();
        var actual = new float[texts.Length][];
        Parallel.For(0, texts.Length * 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
            actual[i % texts.Length] = Provider.Embed(texts[i % texts.Length]));
        for (var i = 0; i < texts.Length; i++)
        {
            actual[i].Should().Equal(expected[i]);
        }
    }

    [Fact]
    public async Task Cancellation_is_observed()
    {
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await FluentActions.Awaiting(async () => await Provider.EmbedAsync("cat", cts.Token)).Should().ThrowAsync<OperationCanceledException>();
    }

    [Theory]
    [InlineData("The CAT", new[] { "the", "cat" })]
    [InlineData("cat!", new[] { "cat" })]
    [InlineData("Don't", new[] { "do", "not" })]
    [InlineData("DON\u2019T", new[] { "do", "not" })]
    [InlineData("can't won't", new[] { "can", "not", "will", "not" })]
    [InlineData("I'm sure we'll see", new[] { "am", "sure", "we", "will", "see" })]
    [InlineData("they've said she'd", new[] { "they", "have", "said", "she", "would" })]
    [InlineData("you're John's", new[] { "you", "are", "john" })]
    [InlineData("a long-distance e-mail", new[] { "long-distance", "e-mail" })]
    [InlineData("zqxjv-cat", new[] { "cat" })]
    [InlineData("U.S. economy", new[] { "economy" })]
    [InlineData("1,000 people paid $5", new[] { "people", "paid" })]
    [InlineData("", new string[0])]
    [InlineData("Zürich café", new string[0])]
    public void Resolves_tokens_to_vocabulary_words(string text, string[] expected)
    {
        Provider.Words(text).Should().Equal(expected);
    }

    [Fact]
    public void Symbols_count_only_when_enabled()
    {
        var withSymbols = new BuiltinEmbeddingProvider(WordVectorModel.Embedded, new() { IncludeSymbols = true });
        withSymbols.Words("cat!").Should().Equal("cat", "!");
        withSymbols.Words("$5, 10%").Should().Equal("$", ",", "%");
    }

    [Fact]
    public void Sif_weights_frequent_words_down()
    {
        var model = WordVectorModel.Embedded;
        Provider.Weight(model.IndexOf("the")).Should().BeLessThan(0.05f);
        Provider.Weight(model.IndexOf("kitten")).Should().BeGreaterThan(0.95f);
        Provider.Weight(model.IndexOf("cat")).Should().BeInRange(0.8f, 0.99f);
    }

    private static float Dot(float[] a, float[] b) => TensorPrimitives.Dot(a, b);
}
