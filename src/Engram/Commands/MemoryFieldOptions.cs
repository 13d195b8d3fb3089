using System.CommandLine;

namespace Engram.Cli.Commands;

/// <summary>
/// The fields <c>add</c> and <c>update</c> both set (scope fields are add-only: an update cannot move a
/// memory). For <c>update</c> the help names no defaults: a field not given stays as it is.
/// </summary>
internal sealed class MemoryFieldOptions(bool forUpdate = false)
{
    public Option<string?> Type { get; } = OptionFactory.Text("--type",
        "Kind of memory: a lowercase word such as fact, preference, experience" + (forUpdate ? "." : " (default fact)."), "TYPE");

    public Option<string?> Tier { get; } = OptionFactory.Choice("--tier",
        "How long it is meant to live" + (forUpdate ? "." : " (default long_term)."), "working", "short_term", "long_term");

    public Option<double?> Importance { get; } = OptionFactory.Number("--importance", "Importance from 0 to 1" + (forUpdate ? "." : " (default 0.5)."));

    public Option<double?> Valence { get; } = OptionFactory.Number("--valence", "Emotional tone from -1 (negative) to 1 (positive).");

    public Option<string[]> Tags { get; } = OptionFactory.Repeatable("--tag", "A tag; repeat for more (--tag a --tag b).", "TAG");

    public Option<string[]> Entities { get; } = OptionFactory.Repeatable("--entity",
        "A person, place or thing the memory mentions; repeat for more (--entity Alice --entity \"Acme, Inc.\"). Commas stay part of the name.", "NAME");

    public Option<string?> Metadata { get; } = OptionFactory.Text("--metadata", "A JSON object of metadata, e.g. '{\"project\":\"x\"}'.", "JSON");

    public Option<string?> Source { get; } = OptionFactory.Text("--source", "Where the memory came from (a file, a URL, a conversation).", "SOURCE");

    public Option<long?> Ttl { get; } = OptionFactory.WholeNumber("--ttl",
        forUpdate ? "Expire the memory this many seconds from now." : "Expire the memory after this many seconds.", "SECONDS");

    public void AddTo(Command command)
    {
        command.Options.Add(Type);
        command.Options.Add(Tier);
        command.Options.Add(Importance);
        command.Options.Add(Valence);
        command.Options.Add(Tags);
        command.Options.Add(Entities);
        command.Options.Add(Metadata);
        command.Options.Add(Source);
        command.Options.Add(Ttl);
    }
}
