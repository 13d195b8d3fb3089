using System.CommandLine;
using Engram.Core.Memories;

namespace Engram.Cli.Commands;

/// <summary>The filters of <c>list</c> and the bulk <c>delete</c>, turned into one <see cref="MemoryFilter"/>.</summary>
internal sealed class FilterOptions(string verb)
{
    public ScopeOptions Scope { get; } = new(verb);

    public Option<string[]> Types { get; } = OptionFactory.Repeatable("--type", "Only this type; repeat (or comma-separate) for several.", "TYPE");

    public Option<string[]> Tiers { get; } = OptionFactory.Repeatable("--tier", "Only this tier (working, short_term, long_term); repeat for several.", "TIER");

    public Option<string[]> Tags { get; } = OptionFactory.Repeatable("--tag", "Only memories with this tag; repeat for several (see --tags-match).", "TAG");

    public Option<string?> TagsMatch { get; } = OptionFactory.Choice("--tags-match", "Whether every --tag must be present (all, default) or any one.", "all", "any");

    public Option<string?> Entity { get; } = OptionFactory.Text("--entity", "Only memories naming this entity (case-insensitive).", "NAME");

    public Option<string[]> Metadata { get; } = OptionFactory.Repeatable("--metadata", "Only memories whose metadata has key=value (nested: outer.inner=value); repeatable.", "KEY=VALUE");

    public Option<string?> Source { get; } = OptionFactory.Text("--source", "Only memories from this source.", "SOURCE");

    public Option<string?> CreatedAfter { get; } = OptionFactory.Text("--created-after", "Only memories created after this ISO 8601 time.", "TIME");

    public Option<string?> CreatedBefore { get; } = OptionFactory.Text("--created-before", "Only memories created before this ISO 8601 time.", "TIME");

    public void AddTo(Command command)
    {
        Scope.AddTo(command);
        command.Options.Add(Types);
        command.Options.Add(Tiers);
        command.Options.Add(Tags);
        command.Options.Add(TagsMatch);
        command.Options.Add(Entity);
        command.Options.Add(Metadata);
        command.Options.Add(Source);
        command.Options.Add(CreatedAfter);
        command.Options.Add(CreatedBefore);
    }

    /// <summary>True when any filter flag was given (the bulk delete must not be mistaken for a single one).</summary>
    public bool AnyGiven(ParseResult parse) =>
        AddedOptions().Any(option => parse.GetResult(option) is { Implicit: false });

    public MemoryFilter Build(ParseResult parse) => new()
    {
        UserId = CliInput.FilterValue(parse.GetValue(Scope.User), "--user"),
        AgentId = CliInput.FilterValue(parse.GetValue(Scope.Agent), "--agent"),
        SessionId = CliInput.FilterValue(parse.GetValue(Scope.Session), "--session"),
        Namespace = CliInput.FilterValue(parse.GetValue(Scope.Namespace), "--namespace"),
        Types = CliInput.List(parse.GetValue(Types), "--type")?.Select(TypeRule.Type).ToList(),
        Tiers = CliInput.List(parse.GetValue(Tiers), "--tier")?.Select(CliInput.Tier).ToList(),
        Tags = CliInput.List(parse.GetValue(Tags), "--tag"),
        TagsMatch = parse.GetValue(TagsMatch) == "any" ? TagMatch.Any : TagMatch.All,
        Entity = CliInput.FilterValue(parse.GetValue(Entity), "--entity"),
        Metadata = CliInput.MetadataFilters(parse.GetValue(Metadata)),
        Source = CliInput.FilterValue(parse.GetValue(Source), "--source"),
        CreatedAfter = CliInput.Timestamp(parse.GetValue(CreatedAfter), "--created-after"),
        CreatedBefore = CliInput.Timestamp(parse.GetValue(CreatedBefore), "--created-before"),
    };

    /// <summary>
    /// A type no memory can have is refused with add's words: as a filter it matched nothing, silently, where add says why.
    /// (Only the type's form is checked; the size limits play no part in it.)
    /// </summary>
    private static readonly MemoryValidator TypeRule = new(new Core.Configuration.MemoryLimits());

    private IEnumerable<Option> AddedOptions() =>
        [Scope.User, Scope.Agent, Scope.Session, Scope.Namespace, Types, Tiers, Tags, TagsMatch, Entity, Metadata, Source, CreatedAfter, CreatedBefore];
}
