using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Engram.Core.Embeddings;

namespace Engram.Tests.Embeddings;

public sealed class WordVectorModelTests
{
    private static byte[] ResourceBytes()
    {
        using var stream = typeof(WordVectorModel).Assembly.GetManifestResourceStream(WordVectorModel.EmbeddedResourceName);
        stream.Should().NotBeNull("the built-in model is embedded in Engram.Core");
        var bytes = new byte[stream!.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    [Fact]
    public void Embedded_model_has_the_documented_header()
    {
        var bytes = ResourceBytes();
        Encoding.ASCII.GetString(bytes, 0, 8).Should().Be("ENGRAMWV");
        BitConverter.ToUInt16(bytes, 8).Should().Be(1);

        var header = WordVectorModel.ReadHeader(bytes);
        header.Version.Should().Be(1);
        header.Type.Should().Be(WordVectorType.Int8);
        header.Dimensions.Should().Be(100);
        header.Count.Should().Be(140_000);
        header.ModelId.Should().Be("builtin-glove6b-100d-int8-v1");
        bytes.Length.Should().BeLessThanOrEqualTo(16_000_000);
    }

    [Fact]
    public void Embedded_model_loads_with_its_vocabulary_in_frequency_order()
    {
        var model = WordVectorModel.Embedded;
        model.Count.Should().Be(140_000);
        model.Dimensions.Should().Be(100);
        model.ModelId.Should().Be("builtin-glove6b-100d-int8-v1");
        model.Word(0).Should().Be("the");
        model.Word(1).Should().Be(",");
        model.IndexOf("of").Should().Be(3);
        model.IndexOf("kitten").Should().BeGreaterThan(model.IndexOf("cat"));
        model.IndexOf("The").Should().Be(-1, "the vocabulary is lowercase and lookups are exact");
        model.IndexOf("no-such-word-here").Should().Be(-1);
    }

    public static TheoryData<string> PinnedWords => ["the", "cat", "kitten", "revenue"];

    [Theory]
    [MemberData(nameof(PinnedWords))]
    public void Vectors_match_the_original_floats_within_the_quantization_error(string word)
    {
        // Values copied from the npm package's JSON by tools/embeddings/convert.mjs --pinned.
        using var pinned = JsonDocument.Parse(File.ReadAllText(Path.Combine(SourceDirectory(), "pinned-vectors.json")));
        var entry = pinned.RootElement.GetProperty(word);
        var original = entry.GetProperty("values").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        var model = WordVectorModel.Embedded;
        model.IndexOf(word).Should().Be(entry.GetProperty("rank").GetInt32());

        var actual = new float[model.Dimensions];
        model.CopyVector(model.IndexOf(word), actual);

        original.Should().HaveCount(100);
        var halfStep = original.Max(MathF.Abs) / 127f / 2f;
        for (var d = 0; d < original.Length; d++)
        {
            actual[d].Should().BeApproximately(original[d], halfStep * 1.001f, $"dimension {d} of \"{word}\"");
        }
        Cosine(actual, original).Should().BeGreaterThan(0.9999);
    }

    [Fact]
    public void Parse_rejects_bad_magic_and_truncation()
    {
        var bytes = ResourceBytes();
        var badMagic = bytes[..64].ToArray();
        badMagic[0] = (byte)'X';
        FluentActions.Invoking(() => WordVectorModel.Parse(badMagic)).Should().Throw<InvalidDataException>().WithMessage("*magic*");
        FluentActions.Invoking(() => WordVectorModel.Parse(bytes.AsSpan(0, bytes.Length - 1))).Should().Throw<InvalidDataException>();
        var badVersion = bytes[..64].ToArray();
        badVersion[8] = 9;
        FluentActions.Invoking(() => WordVectorModel.ReadHeader(badVersion)).Should().Throw<InvalidDataException>().WithMessage("*version*");
    }

    private static double Cosine(float[] a, float[] b)
    {
        double dot = 0, na = 0, nb = 0;
        for (var i = 0; i < a.Length; i++)
        {
            dot += a[i] * b[i];
            na += a[i] * a[i];
            nb += b[i] * b[i];
        }
        return dot / Math.Sqrt(na * nb);
    }

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;
}
