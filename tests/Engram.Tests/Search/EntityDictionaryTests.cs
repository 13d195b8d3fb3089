using System.Text.Json;
using Engram.Core.Memories;
using Engram.Core.Search;

namespace Engram.Tests.Search;

/// <summary>Which entity names a query mentions, as the doc table keeps them (per tenant, reference counted).</summary>
public sealed class EntityDictionaryTests
{
    private static int _next;

    private static Memory MemoryNaming(params string[] entities) => new()
    {
        Id = $"01J0000000000000000{Interlocked.Increment(ref _next):D7}",
        Content = "x",
        ContentHash = "h",
        Type = "fact",
        Tier = MemoryTier.LongTerm,
        Importance = 0.5,
        Tags = [],
        Entities = entities,
        Metadata = JsonDocument.Parse("{}").RootElement,
        CreatedAt = DateTimeOffset.UnixEpoch,
        UpdatedAt = DateTimeOffset.UnixEpoch,
        Version = 1,
    };

    private static List<string> Named(DocTable docs, string tenant, string query) =>
        docs.EntitiesNamedIn(tenant, query).Select(symbol => Key(docs, symbol)).Order(StringComparer.Ordinal).ToList();

    private static string Key(DocTable docs, int symbol) =>
        new[] { "ana", "the lord of the rings", "new york", "james", "the who" }.Single(k => docs.Lookup(k) == symbol);

    [Fact]
    public void FindsWholeNamesAndPhrases_CaseInsensitively_WithoutStemming()
    {
        var docs = new DocTable();
        docs.Add("t", MemoryNaming("Ana", "The Lord of the Rings", "New York", "James", "The Who"));

        Named(docs, "t", "What did ANA read?").Should().Equal("ana");
        Named(docs, "t", "anagrams and bananas").Should().BeEmpty("whole words only");
        Named(docs, "t", "has Ana been to new york with james").Should().Equal("ana", "james", "new york");
        Named(docs, "t", "who liked Lord of the Rings").Should().Equal(new[] { "the lord of the rings" }, "stop words are dropped on both sides");
        Named(docs, "t", "a new car in york").Should().BeEmpty("the words of a phrase must be adjacent");
        Named(docs, "t", "jame").Should().BeEmpty("names are not stemmed");
        Named(docs, "t", "the who").Should().BeEmpty("a name of stop words alone never matches");
        Named(docs, "other", "Ana").Should().BeEmpty("names belong to their tenant");
    }

    [Fact]
    public void ANameLivesAsLongAsAMemoryNamesIt()
    {
        var docs = new DocTable();
        var first = MemoryNaming("Ana");
        var second = MemoryNaming("ana");
        docs.Add("t", first);
        docs.Add("t", second);
        docs.Retire(first.Id);
        Named(docs, "t", "Ana").Should().Equal("ana");
        docs.Add("t", second with { Entities = ["James"] }); // an update: the new version no longer names Ana
        Named(docs, "t", "Ana").Should().BeEmpty();
        Named(docs, "t", "James").Should().Equal("james");
        docs.Retire(second.Id);
        Named(docs, "t", "James").Should().BeEmpty();
    }
}
