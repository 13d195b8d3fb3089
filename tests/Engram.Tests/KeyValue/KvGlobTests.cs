using System.Text;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Storage.Postgres;
using Engram.Core.Storage.Sqlite;
using Engram.Tests.Support;
using FluentAssertions;
using Npgsql;
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
    /// <summary>Redis's reading of a class: a reversed range is swapped, an escaped '^' or '-' is itself, a range ends a run.</summary>
    [Theory]
    [InlineData("k[z-a]", "kb", true)]
    [InlineData("k[z-a]", "kB", false)]
    [InlineData("k[a-c-e]", "kb", true)]
    [InlineData("k[a-c-e]", "k-", true)]
    [InlineData("k[a-c-e]", "ke", true)]
    [InlineData("k[a-c-e]", "kd", false)]
    [InlineData("k[\\^]1", "k^1", true)]
    [InlineData("k[\\^]1", "ka1", false)]
    [InlineData("k[^\\^]1", "ka1", true)]
    [InlineData("k[^\\^]1", "k^1", false)]
    [InlineData("k[a\\-z]", "k-", true)]
    [InlineData("k[a\\-z]", "kz", true)]
    [InlineData("k[a\\-z]", "kb", false)]
    [InlineData("k[\\^-]", "k-", true)]
    [InlineData("k[\\^-]", "k^", true)]
    [InlineData("k[\\a-c]", "ka", true)]
    [InlineData("k[\\a-c]", "kb", false)]
    public void Classes_read_as_Redis_reads_them(string pattern, string key, bool matches) =>
        KvGlob.Parse("t", pattern).Matches(KvKeys.ToStored("t", key)).Should().Be(matches, $"'{key}' against '{pattern}'");

    /// <summary>
    /// The PostgreSQL store lists keys with <see cref="PostgresMemoryStore.GlobToRegex"/>: it decides as SQLite's GLOB does,
    /// on random patterns of the tricky classes (reversed and chained ranges, '^' and '-' as members), judged by a real
    /// PostgreSQL server, and never makes a regular expression it refuses.
    /// </summary>
    [Fact]
    public async Task The_postgres_regex_agrees_with_sqlite_glob()
    {
        using var dir = new TempDirectory();
        using var sqlite = SqliteConnection.Open(Path.Combine(dir.Path, "glob.db"));
        var server = await PostgresServer.GetAsync();
        await using var pg = new NpgsqlConnection(server.ConnectionString(await server.CreateDatabaseAsync()));
        await pg.OpenAsync();
        var random = new Random(11);
        string[] patternParts = ["a", "b", "e", "*", "?", "[z-a]", "[a-c-e]", "[\\^]", "[a\\-z]", "[^\\^]", "[\\^-]", "[]a]", "[^]]", "[-a]", "[a-]", "[\\a-c]", "\\[", "-", "^", ".", "(", "$"];
        string[] keyParts = ["a", "b", "c", "d", "e", "z", "]", "-", "^", "[", ".", "(", "$", "\\"];
        var compared = 0;
        var matched = 0;
        for (var round = 0; round < 400; round++)
        {
            var pattern = new StringBuilder();
            for (var i = random.Next(1, 4); i > 0; i--)
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
                continue;
            }
            var regex = PostgresMemoryStore.GlobToRegex(glob.Sql);
            for (var k = 0; k < 5; k++)
            {
                var key = new StringBuilder();
                for (var i = random.Next(0, 4); i > 0; i--)
                {
                    key.Append(keyParts[random.Next(keyParts.Length)]);
                }
                var stored = KvKeys.ToStored("t", key.ToString());
                var expected = sqlite.ScalarInt64("SELECT ?1 GLOB ?2", stored, glob.Sql) == 1;
                await using var command = new NpgsqlCommand("SELECT $1 ~ $2", pg) { Parameters = { new() { Value = stored }, new() { Value = regex } } };
                var actual = (bool)(await command.ExecuteScalarAsync())!;
                actual.Should().Be(expected, $"key '{stored}' against GLOB '{glob.Sql}' as regex '{regex}' (pattern '{pattern}')");
                compared++;
                matched += expected ? 1 : 0;
            }
        }
        compared.Should().BeGreaterThan(1_000);
        matched.Should().BeGreaterThan(50);
    }
}
