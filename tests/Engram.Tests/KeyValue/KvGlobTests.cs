using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;
using FluentAssertions;
using Xunit;

namespace Engram.Tests.KeyValue;

/// <summary>
/// <see cref="KvGlob.Matches"/> decides exactly as SQLite's GLOB does on the same pattern (the stores list keys with it;
/// a transaction matches the keys it changed itself): random patterns and keys, judged by both.
/// </summary>
public sealed class KvGlobTests
{
    [Fact]
    public void Matches_AgreesWithSqliteGlob_OnRandomPatternsAndKeys()
    {
        using var dir = new TempDirectory();
        using var sqlite = SqliteConnection.Open(Path.Combine(dir.Path, "glob.db"));
        var random = new Random(7);
        string[] patternParts = ["a", "b", "é", "😀", "*", "?", "[ab]", "[^a]", "[a-c]", "[]a]", "[^]]", "[-a]", "[a-]", "[😀é]", "[^😀]", "\\*", "\\[", "-", "^", "]"];
        string[] keyParts = ["a", "b", "c", "é", "😀", "]", "-", "^", "[", "*", "?"];
        var compared = 0;
        var matched = 0;
        for (var round = 0; round < 3000; round++)
        {
            var pattern = new StringBuilder();
            for (var i = random.Next(1, 6); i > 0; i--)
            {
                pattern.Append(patternParts[random.Next(patternParts.Length)]);
            }
            KvGlob glob;
            try
            {
                glob = KvGlob.Parse("t", pattern.ToString());
            }
            catch (ValidationException)
            {
                continue; // a pattern the parser refuses (an empty or unclosed class) never reaches a store
            }
            for (var k = 0; k < 10; k++)
            {
                var key = new StringBuilder();
                for (var i = random.Next(0, 6); i > 0; i--)
                {
                    key.Append(keyParts[random.Next(keyParts.Length)]);
                }
                var stored = KvKeys.ToStored("t", key.ToString());
                var expected = sqlite.ScalarInt64("SELECT ?1 GLOB ?2", stored, glob.Sql) == 1;
                glob.Matches(stored).Should().Be(expected, $"key '{stored}' against GLOB '{glob.Sql}' (pattern '{pattern}')");
                compared++;
                matched += expected ? 1 : 0;
            }
        }
        compared.Should().BeGreaterThan(10_000);
        matched.Should().BeGreaterThan(500, "enough of the pairs match for both answers to be tested");
    }
}
