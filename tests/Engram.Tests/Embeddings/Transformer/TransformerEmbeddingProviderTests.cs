using System.Numerics.Tensors;
using Engram.Core.Embeddings.Transformer;

namespace Engram.Tests.Embeddings.Transformer;

public sealed class TransformerEmbeddingProviderTests(TransformerModelFixture models) : IClassFixture<TransformerModelFixture>
{
    public static TheoryData<string> Models => new(TransformerModels.All.Select(m => m.Name));

    [Theory]
    [MemberData(nameof(Models))]
    public async Task A_query_is_closer_to_its_answer_than_to_an_unrelated_sentence(string name)
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

    [Theory]
    [MemberData(nameof(Models))]
    public async Task Each_paraphrase_is_closer_to_its_pair_than_to_every_unrelated_sentence(string name)
    {
        (string, string)[] pairs =
        [
            ("The meeting was moved to Thursday afternoon.", "We rescheduled the meeting for Thursday after lunch."),
            ("My dog loves chasing the ball in the park.", "In the park, my puppy runs after balls all day."),
            ("The server crashed because the disk was full.", "A full hard drive brought the server down."),
            ("She is learning to play the violin.", "She takes violin lessons to learn the instrument."),
            ("Preheat the oven before baking the bread.", "Heat the oven first, then bake the loaf."),
        ];
        var embedder = models.Get(name);
        var left = await embedder.EmbedBatchAsync(pairs.Select(p => p.Item1).ToList());
        var right = await embedder.EmbedBatchAsync(pairs.Select(p => p.Item2).ToList());

        for (var i = 0; i < pairs.Length; i++)
        {
            var own = TensorPrimitives.Dot(left[i], right[i]);
            for (var j = 0; j < pairs.Length; j++)
            {
                if (j != i)
                {
                    own.Should().BeGreaterThan(TensorPrimitives.Dot(left[i], right[j]), $"'{pairs[i].Item1}' vs '{pairs[j].Item2}'");
                    own.Should().BeGreaterThan(TensorPrimitives.Dot(left[i], left[j]), $"'{pairs[i].Item1}' vs '{pairs[j].Item1}'");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public async Task A_batch_of_mixed_lengths_over_several_runs_equals_embedding_one_by_one(string name)
    {
        using var embedder = new TransformerEmbeddingProvider(TransformerModels.Find(name)!, new TransformerOptions { Threads = 1, MaxBatchTokens = 512 });
        var words = "the river ran past old mills where children once played near quiet stone bridges under tall green trees".Split(' ');
        var texts = Enumerable.Range(0, 24).Select(i => string.Join(' ', Enumerable.Range(0, 3 + (i * 37 % 150)).Select(w => words[(w + i) % words.Length]))).ToList();
        texts.Add("Short.");
        texts.Add("");
        texts.Sum(t => embedder.Tokenize(t).Length).Should().BeGreaterThan(4 * 512, "the batch must take several runs");

        var batch = await embedder.EmbedBatchAsync(texts);

        for (var i = 0; i < texts.Count; i++)
        {
            var single = await embedder.EmbedAsync(texts[i]);
            var diff = new float[single.Length];
            TensorPrimitives.Subtract(batch[i], single, diff);
            TensorPrimitives.MaxMagnitude(diff).Should().BeLessThanOrEqualTo(1e-4f, $"text {i} ({texts[i].Length} chars)");
        }
    }

    [Theory]
    [MemberData(nameof(Models))]
    public async Task A_text_longer_than_the_window_embeds_like_its_first_window_and_ends_with_sep(string name)
    {
        var embedder = models.Get(name);
        var model = embedder.Model;
        // Common words that are one word piece each, so the first window is exactly the first MaxTokens − 2 words.
        var words = "the cat sat on a mat and the dog ran to the old red barn in the rain".Split(' ');
        var all = Enumerable.Range(0, 4 * model.MaxTokens).Select(i => words[i % words.Length]).ToList();
        var longText = string.Join(' ', all);
        var firstWindow = string.Join(' ', all.Take(model.MaxTokens - 2));
        var sep = embedder.Tokenize("x")[^1];

        var tokens = embedder.Tokenize(longText);

        tokens.Should().HaveCount(model.MaxTokens);
        tokens[^1].Should().Be(sep, "truncation keeps [SEP] at the end");
        tokens.Should().Equal(embedder.Tokenize(firstWindow));
        var vectors = await embedder.EmbedBatchAsync([longText, firstWindow]);
        TensorPrimitives.CosineSimilarity(vectors[0], vectors[1]).Should().BeGreaterThanOrEqualTo(0.9999f);
    }

    [Fact]
    public void A_word_after_a_bare_newline_is_a_word_not_unknown()
    {
        var embedder = models.Get(TransformerModels.ArcticXs.Name);

        embedder.Tokenize("remember the milk\nand the eggs\r\ntomorrow\tmorning").Should().Equal(embedder.Tokenize("remember the milk and the eggs tomorrow morning"));
    }

    [Fact]
    public void Accents_are_stripped_like_uncased_bert()
    {
        var embedder = models.Get(TransformerModels.ArcticXs.Name);

        embedder.Tokenize("café").Should().Equal(embedder.Tokenize("cafe"));
        embedder.Tokenize("Crème brûlée in Zürich").Should().Equal(embedder.Tokenize("creme brulee in zurich"));
        embedder.Tokenize("cafe\u0301").Should().Equal(embedder.Tokenize("cafe"), "a decomposed accent is stripped too");
    }

    [Fact]
    public void Chinese_and_Japanese_kanji_are_split_into_one_token_per_character()
    {
        var embedder = models.Get(TransformerModels.ArcticXs.Name);
        var unknown = embedder.Tokenize("爱")[1]; // a simplified character the uncased BERT vocabulary lacks: [UNK]

        var chinese = embedder.Tokenize("北京天安");
        var japanese = embedder.Tokenize("東京大学");

        chinese.Should().HaveCount(4 + 2);
        chinese[1..^1].Should().NotContain(unknown).And.OnlyHaveUniqueItems();
        japanese.Should().HaveCount(4 + 2);
        japanese[1..^1].Should().NotContain(unknown).And.OnlyHaveUniqueItems();
        embedder.Tokenize("北京").Should().Equal(embedder.Tokenize("北 京"), "ideographs are words of their own, spaces or not");
    }

    [Fact]
    public async Task A_query_gets_the_models_prefix_and_a_document_does_not()
    {
        var arctic = models.Get(TransformerModels.ArcticXs.Name);
        var minilm = models.Get(TransformerModels.MiniLM.Name);
        const string text = "when is the dentist appointment";

        arctic.Tokenize(text, query: true).Should().Equal(arctic.Tokenize(TransformerModels.ArcticXs.QueryPrefix + text));
        arctic.Tokenize(text, query: true).Length.Should().BeGreaterThan(arctic.Tokenize(text).Length);
        (await minilm.EmbedQueryAsync(text)).Should().Equal(await minilm.EmbedAsync(text), "MiniLM has no query prefix");
    }
}
