using Engram.Core.Embeddings;
using Engram.Core.Embeddings.Transformer;

namespace Engram.Tests.Embeddings.Transformer;

public sealed class DefaultEmbedderTests
{
    [Fact]
    public void With_nothing_configured_Engram_embeds_with_arctic_embed_xs()
    {
        var settings = new EmbeddingSettings();
        settings.Validate().Should().BeEmpty();

        using var embedder = (TransformerEmbeddingProvider)settings.CreateProvider();

        embedder.Model.Should().Be(TransformerModels.ArcticXs);
        embedder.IsLoaded.Should().BeFalse("creating the default embedder loads nothing; the first embed does");
    }

    [Fact]
    public void The_fast_embedder_stays_one_setting_away()
    {
        var settings = new EmbeddingSettings { Provider = EmbeddingSettings.Builtin };

        settings.CreateProvider().Should().BeSameAs(BuiltinEmbeddingProvider.Default);
    }
}
