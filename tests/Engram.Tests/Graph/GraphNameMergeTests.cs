using Engram.Core.Graph;
using static Engram.Core.Graph.GraphNameMerge;

namespace Engram.Tests.Graph;

/// <summary>The plan both stores' NFC migrations follow when an entity's name changes (GraphNameMigrationTests runs them).</summary>
public sealed class GraphNameMergeTests
{
    private const string Old = "Jose\u0301";
    private const string New = "Jos\u00e9";

    [Fact]
    public void Relations_that_become_one_triple_keep_the_target_s_then_the_oldest()
    {
        var plan = PlanRelations(Old, New,
        [
            new(5, Old, Old, "same"),   // all three become José-same-José: the lowest id of the moving ones is kept
            new(3, Old, New, "same"),
            new(4, New, Old, "same"),
            new(1, New, "Ann", "knows"),
            new(2, Old, "Ann", "knows"), // José-knows-Ann exists (id 1, the target's own): dropped
            new(6, Old, "Ann", "likes"), // nothing in its way: moved
        ]);
        plan.Delete.Should().BeEquivalentTo([4L, 5L, 2L]);
        plan.Update.Should().BeEquivalentTo([new RelationRow(3, New, New, "same"), new RelationRow(6, New, "Ann", "likes")]);
    }

    [Fact]
    public void Observations_the_target_holds_are_dropped_and_the_rest_move()
    {
        ObservationsToDrop([new(7, "likes tea"), new(8, "new fact")], ["likes tea", "other"]).Should().Equal(7L);
        ObservationsToDrop([new(7, "a"), new(8, "b")], []).Should().BeEmpty();
    }

    [Theory]
    [InlineData("Ann", false)]
    [InlineData(New, false)]
    [InlineData(Old, true)]
    [InlineData("\u212b", true)] // ANGSTROM SIGN: NFC is U+00C5
    public void Only_a_name_that_changes_under_NFC_is_renamed(string name, bool renamed)
    {
        NeedsNormalizing(name, out var normalized).Should().Be(renamed);
        normalized.Should().Be(GraphValidator.NormalizeName(name));
    }

    [Fact]
    public void A_name_too_long_in_NFC_stays_as_stored()
    {
        // U+0958 decomposes: 200 characters stored before the migration would be 400 in NFC, past the 256 a name takes.
        NeedsNormalizing(new string('\u0958', 200), out _).Should().BeFalse();
        NeedsNormalizing(new string('\u0958', 128), out var normalized).Should().BeTrue();
        normalized.Length.Should().Be(256);
    }
}
