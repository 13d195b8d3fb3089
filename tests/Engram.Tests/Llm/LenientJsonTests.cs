using Engram.Core.Llm;

namespace Engram.Tests.Llm;

public sealed class LenientJsonTests
{
    [Theory]
    [InlineData("{\"a\":1}", "{\"a\":1}")]
    [InlineData("  [1,2]  ", "[1,2]")]
    [InlineData("```\n{\"a\":\"```\"}\n```", "{\"a\":\"```\"}")]
    [InlineData("text {not json} then {\"a\":{\"b\":[1,{\"c\":\"}\"}]}} tail", "{\"a\":{\"b\":[1,{\"c\":\"}\"}]}}")]
    [InlineData("<THINK>{\"wrong\":1}</THINK>{\"right\":2}", "{\"right\":2}")]
    [InlineData("{\"quote\":\"she said \\\"hi}\\\"\"}", "{\"quote\":\"she said \\\"hi}\\\"\"}")]
    public void Finds_the_first_json_that_parses(string answer, string expected)
    {
        var found = LenientJson.Extract(answer, out var problem);
        problem.Should().BeNull();
        System.Text.Json.Nodes.JsonNode.DeepEquals(System.Text.Json.Nodes.JsonNode.Parse(found!.Value.GetRawText()), System.Text.Json.Nodes.JsonNode.Parse(expected)).Should().BeTrue(found.Value.GetRawText());
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("no json at all", "no JSON object")]
    [InlineData("{\"a\":[1,2", "cut off")]
    [InlineData("<think>{\"a\":1} and it never ends", "no JSON object")]
    public void Says_why_there_is_nothing(string answer, string reason)
    {
        LenientJson.Extract(answer, out var problem).Should().BeNull();
        problem.Should().Contain(reason);
    }

    /// <summary>Found by the probe: every bracket was tried as a start, each scanning to its close, so deep nesting was quadratic.</summary>
    [Fact]
    public void Deeply_nested_brackets_are_given_up_on_in_linear_time()
    {
        var answer = new string('[', 200_000) + new string(']', 200_000);
        var watch = System.Diagnostics.Stopwatch.StartNew();

        LenientJson.Extract(answer, out var problem).Should().BeNull();

        watch.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(5), "before, this took minutes");
        problem.Should().NotBeNull();
    }
}
