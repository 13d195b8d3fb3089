using System.IO.Compression;
using System.Text;
using Engram.Core.Operations;


namespace Engram.Tests.Operations;

/// <summary>
/// A logical backup's export header is checked, not trusted (a probe, session 41): a count that is not a whole number,
/// or no counts object, made <c>backup verify</c> throw (exit 2) instead of reporting the file unsound.
/// </summary>
public sealed class BackupVerifyHeaderTests
{
    [Theory]
    [InlineData("""{"memories":"many"}""", "its header says")]
    [InlineData("""{"memories":1.5}""", "its header says")]
    [InlineData("\"none\"", "has no counts object")]
    public void A_header_whose_counts_are_not_whole_numbers_is_a_problem_reported(string counts, string problem)
    {
        var header = $$"""{"kind":"header","format":"{{ExportHeader.FormatName}}","format_version":3,"counts":{{counts}}}""";
        var export = Encoding.UTF8.GetBytes(header + "\n");
        using var payload = new MemoryStream();
        using (var gzip = new GZipStream(payload, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(export);
        }
        payload.Position = 0;
        var manifest = new BackupManifest(1, "test", 1, 0, "store", new Dictionary<string, long>(), DateTimeOffset.UtcNow, "logical", "gzip",
            export.Length, Sha256(export), payload.Length, Sha256(payload.ToArray()), BackupContents.Export);
        var problems = new List<string>();

        LogicalBackup.VerifyPayload(payload, manifest, problems, CancellationToken.None);

        problems.Should().Contain(p => p.Contains(problem, StringComparison.Ordinal));
    }

    private static string Sha256(byte[] bytes) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
}
