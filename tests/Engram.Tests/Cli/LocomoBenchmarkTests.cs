using System.Text.Json;
using Engram.Cli.Bench;
using Engram.Core.Search;
using Engram.Tests.Support;

namespace Engram.Tests.Cli;

/// <summary>
/// The retrieval harness on tiny hand-made files whose figures are worked out by hand: turn recall@k, session
/// any@5 / all@5 from the sessions of the top five turns, the breakdown by question type (by category when a
/// file has none), and the question's date as search's "now".
/// </summary>
public sealed class LocomoBenchmarkTests : IDisposable
{
    private readonly TempDirectory _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>Words decide alone, so the ranking is plain BM25 over distinct words.</summary>
    private static SearchOptions LexicalOnly() => new() { SemanticWeight = 0, LexicalWeight = 1, EntityWeight = 0, RecencyWeight = 0, ImportanceWeight = 0 };

    private static readonly object[] Session1 =
    [
        new { speaker = "alice", dia_id = "D1:1", text = "I adopted a kitten named Whiskers" },
        new { speaker = "bob", dia_id = "D1:2", text = "lovely, a kitten is great company" },
    ];

    private static readonly object[] Session2 =
    [
        new { speaker = "alice", dia_id = "D2:1", text = "I bought a red bicycle yesterday" },
        new { speaker = "bob", dia_id = "D2:2", text = "where do you cycle" },
        new { speaker = "alice", dia_id = "D2:3", text = "along the river every evening" },
    ];

    private string Write(string name, object file)
    {
        var path = Path.Combine(_folder.Path, name);
        File.WriteAllText(path, JsonSerializer.Serialize(file));
        return path;
    }

    private IReadOnlyList<string> Files() =>
    [
        // LongMemEval shape: one question, its type, answer sessions and date at the top level.
        Write("a.json", new
        {
            speaker_a = "alice", speaker_b = "bob",
            session_1_date_time = "3:08 pm on 20 May, 2023", session_1 = Session1,
            session_2_date_time = "5:00 pm on 25 May, 2023", session_2 = Session2,
            question_type = "knowledge-update", question_date = "2023/05/30 (Tue) 03:16", answer_sessions = new[] { "D1", "D2" },
            // Only D2:3 names the river: R@k = 1/2 for every k, sessions of the top 5 = {D2}: any 1, all 0.
            qa = new[] { new { question = "which river?", answer = "", evidence = new[] { "D2:3", "D1:1" }, category = 4 } },
        }),
        Write("b.json", new
        {
            speaker_a = "alice", speaker_b = "bob",
            session_1_date_time = "3:08 pm on 20 May, 2023", session_1 = Session1,
            session_2_date_time = "5:00 pm on 25 May, 2023", session_2 = Session2,
            question_type = "single-session-user", question_date = "2023/05/30 (Tue) 03:16", answer_sessions = new[] { "D1" },
            // D1:1 has kitten and Whiskers, D1:2 only kitten: R@1 = 1, sessions {D1}: any 1, all 1.
            qa = new[] { new { question = "kitten Whiskers", answer = "", evidence = new[] { "D1:1" }, category = 4 } },
        }),
        // LoCoMo shape: no type, no answer sessions; grouped by category.
        Write("c.json", new
        {
            speaker_a = "alice", speaker_b = "bob",
            session_1_date_time = "3:08 pm on 20 May, 2023", session_1 = Session1,
            session_2_date_time = "5:00 pm on 25 May, 2023", session_2 = Session2,
            qa = new[] { new { question = "red bicycle", answer = "", evidence = new[] { "D2:1" }, category = 2 } },
        }),
    ];

    [Fact]
    public async Task Figures_MatchTheHandComputedRecallAndSessionCoverage()
    {
        var results = await new LocomoBenchmark().RunAsync(Files(), LexicalOnly());
        results.Should().HaveCount(3);
        var summary = LocomoBenchmark.Summarize(results);

        var overall = summary.Overall.Recall;
        overall["r1"].Should().BeApproximately((0.5 + 1 + 1) / 3, 1e-9);
        overall["r5"].Should().BeApproximately((0.5 + 1 + 1) / 3, 1e-9);
        overall["any5"].Should().Be(1.0, "both LongMemEval questions have an answer session among the top 5's sessions");
        overall["all5"].Should().Be(0.5, "the river question misses session D1");
        summary.Overall.SessionQuestions.Should().Be(2, "the LoCoMo-shaped file names no answer sessions");

        summary.ByGroup.Keys.Should().BeEquivalentTo("knowledge-update", "single-session-user", "2");
        summary.ByGroup["knowledge-update"].Recall["r10"].Should().Be(0.5);
        summary.ByGroup["knowledge-update"].Recall["all5"].Should().Be(0);
        summary.ByGroup["single-session-user"].Recall["all5"].Should().Be(1);
        summary.ByGroup["2"].Recall["r1"].Should().Be(1);
        summary.ByGroup["2"].Recall.Should().NotContainKey("any5");
    }

    [Fact]
    public async Task SearchNow_IsTheQuestionsDate_NotTheWallClock()
    {
        // Recency alone with a 30-day half-life and a floor of 0.5: a turn 5-10 days older than the question
        // scores 0.79-0.89 and is kept; measured from the wall clock (years later) it would score about 0.
        var options = new SearchOptions { SemanticWeight = 0, LexicalWeight = 0, EntityWeight = 0, ImportanceWeight = 0, RecencyWeight = 1, RecencyHalfLifeDays = 30, MinScore = 0.5 };
        var results = await new LocomoBenchmark().RunAsync([Files()[1]], options);
        results.Single().Ranked.Should().NotBeEmpty();
    }

    [Fact]
    public void QuestionDates_InLongMemEvalsFormat_Parse()
    {
        LocomoBenchmark.ParseQuestionDate("2023/05/30 (Tue) 03:16").Should().Be(new DateTimeOffset(2023, 5, 30, 3, 16, 0, TimeSpan.Zero));
        LocomoBenchmark.ParseQuestionDate("1:56 pm on 8 May, 2023").Should().Be(new DateTimeOffset(2023, 5, 8, 13, 56, 0, TimeSpan.Zero));
        LocomoBenchmark.ParseQuestionDate("someday").Should().BeNull();
    }

    [Fact]
    public void SessionsOfTheTopTurns_AreTheirDiaPrefixes()
    {
        LocomoBenchmark.SessionsOf(["D3:1", "D3:4", "D12:2", "D1:1", "D9:9", "D7:7"], 5).Should().BeEquivalentTo("D3", "D12", "D1", "D9");
    }
}
