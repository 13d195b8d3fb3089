using Engram.Core.Memories;

namespace Engram.Cli.Output;

/// <summary>
/// The listing as a table. Columns have fixed widths so pages can be printed as they arrive
/// (<c>list --all</c> streams) without first holding every row to measure it.
/// </summary>
internal static class MemoryTable
{
    private const int ContentWidth = 60;

    public static void WriteHeader(TextWriter output) =>
        output.WriteLine(Row("ID", "TYPE", "TIER", "IMP", "CREATED", "CONTENT"));

    public static void WriteRow(TextWriter output, Memory memory) =>
        output.WriteLine(Row(memory.Id, memory.Type, memory.Tier.ToWire(), Text.Number(memory.Importance),
            Text.Timestamp(memory.CreatedAt)[..19].Replace('T', ' '), Text.OneLine(memory.Content, ContentWidth)));

    private static string Row(string id, string type, string tier, string importance, string created, string content) =>
        $"{id,-26}  {Text.OneLine(type, 12),-12}  {tier,-10}  {importance,-5}  {created,-19}  {content}".TrimEnd();
}
