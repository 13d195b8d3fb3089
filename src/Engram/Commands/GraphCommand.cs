using System.CommandLine;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.Graph;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram graph …</c>: the knowledge graph (/v1/graph) from the command line, in process or
/// against a server like every memory command.
/// </summary>
internal static class GraphCommand
{
    public static Command Create()
    {
        var graph = new Command("graph", "Work with the knowledge graph: entities, their observations and the relations between them.");
        graph.Subcommands.Add(AddEntity());
        graph.Subcommands.Add(Relate());
        graph.Subcommands.Add(Observe());
        graph.Subcommands.Add(Show());
        graph.Subcommands.Add(Search());
        graph.Subcommands.Add(Neighbors());
        graph.Subcommands.Add(Path());
        graph.Subcommands.Add(DeleteEntity());
        return graph;
    }

    private static Command AddEntity()
    {
        var name = new Argument<string>("name") { Description = "The entity's unique name." };
        var type = new Option<string>("--type") { Description = "The entity type (person, project, …).", HelpName = "TYPE", Required = true };
        var observations = OptionFactory.Repeatable("--obs", "An observation about it; repeat for more.", "TEXT");
        return MemoryCommand.Create("add-entity", "Create an entity (an existing name is left as it is).", async context =>
        {
            var entity = new NewEntity
            {
                Name = context.Get(name),
                EntityType = context.Get(type),
                Observations = (context.Get(observations) ?? []).Select(o => (ObservationInput?)o).ToList(),
            };
            var created = await context.Client.CreateEntitiesAsync([entity], context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, created);
                return;
            }
            context.Output.WriteLine(created.Entities.Count == 0
                ? $"An entity named '{entity.Name}' exists already; nothing was changed."
                : $"Created {entity.Name} ({entity.EntityType}).");
        }, createsData: true, configure: command =>
        {
            command.Arguments.Add(name);
            command.Options.Add(type);
            command.Options.Add(observations);
        });
    }

    private static Command Relate()
    {
        var from = new Argument<string>("from") { Description = "The entity the relation starts at." };
        var relationType = new Argument<string>("relation") { Description = "The relation type, in active voice (works_at, knows)." };
        var to = new Argument<string>("to") { Description = "The entity it points to." };
        var weight = OptionFactory.Number("--weight", "An optional weight for the relation.");
        return MemoryCommand.Create("relate", "Relate two existing entities: FROM RELATION TO.", async context =>
        {
            var relation = new NewRelation { From = context.Get(from), RelationType = context.Get(relationType), To = context.Get(to), Weight = context.Get(weight) };
            var created = await context.Client.CreateRelationsAsync([relation], context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, created);
                return;
            }
            context.Output.WriteLine(created.Relations.Count == 0
                ? "That relation exists already; nothing was changed."
                : "Created " + GraphView.RelationLine(created.Relations[0]) + ".");
        }, createsData: true, configure: command =>
        {
            command.Arguments.Add(from);
            command.Arguments.Add(relationType);
            command.Arguments.Add(to);
            command.Options.Add(weight);
        });
    }

    private static Command Observe()
    {
        var name = new Argument<string>("name") { Description = "The entity." };
        var texts = new Argument<string[]>("observation") { Description = "One or more observations to add.", Arity = ArgumentArity.OneOrMore };
        return MemoryCommand.Create("observe", "Add observations to an entity (ones it has already are skipped).", async context =>
        {
            var addition = new ObservationAddition
            {
                EntityName = context.Get(name),
                Contents = (context.Get(texts) ?? []).Select(t => (ObservationInput?)t).ToList(),
            };
            var result = await context.Client.AddObservationsAsync([addition], context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, result);
                return;
            }
            var added = result.Results[0].AddedObservations;
            context.Output.WriteLine(added.Count == 0 ? "Nothing new: the entity has these observations already." : $"Added {added.Count} observation(s) to {addition.EntityName}.");
        }, configure: command =>
        {
            command.Arguments.Add(name);
            command.Arguments.Add(texts);
        });
    }

    private static Command Show()
    {
        var names = new Argument<string[]>("names") { Description = "Entities to open (default: the whole graph).", Arity = ArgumentArity.ZeroOrMore };
        var includeInvalid = IncludeInvalid();
        return MemoryCommand.Create("show", "Show the whole graph, or the named entities and the relations between them (exit 1 if one does not exist).", async context =>
        {
            var wanted = context.Get(names) ?? [];
            var all = context.Get(includeInvalid);
            var graph = wanted.Length == 0
                ? await context.Client.ReadGraphAsync(all, context.CancellationToken)
                : await context.Client.OpenNodesAsync(wanted, all, context.CancellationToken);
            RefuseMissing(wanted, graph);
            WriteGraph(context, graph);
        }, configure: command =>
        {
            command.Arguments.Add(names);
            command.Options.Add(includeInvalid);
        });
    }

    private static Command Search()
    {
        var query = new Argument<string>("query") { Description = "Words to find in entity names, types and observations." };
        var includeInvalid = IncludeInvalid();
        return MemoryCommand.Create("search", "Find entities by name, type and observations (best first).", async context =>
            WriteGraph(context, await context.Client.SearchGraphAsync(context.Get(query)!, context.Get(includeInvalid), context.CancellationToken)),
            configure: command =>
            {
                command.Arguments.Add(query);
                command.Options.Add(includeInvalid);
            });
    }

    private static Command Neighbors()
    {
        var name = new Argument<string>("name") { Description = "The entity to start from." };
        var depth = new Option<int?>("--depth") { Description = "How many hops to follow (1-5, default 1).", HelpName = "N" };
        var relationType = OptionFactory.Text("--relation-type", "Follow only relations of this type.", "TYPE");
        var limit = new Option<int?>("--limit") { Description = "At most this many entities besides the start (1-10000, default 1000).", HelpName = "N" };
        var includeInvalid = IncludeInvalid();
        return MemoryCommand.Create("neighbors", "Show the entities within N hops of an entity, in both directions.", async context =>
            WriteGraph(context, await context.Client.NeighborsAsync(context.Get(name)!, context.Get(depth), context.Get(relationType),
                context.Get(includeInvalid), context.Get(limit), context.CancellationToken)),
            configure: command =>
            {
                command.Arguments.Add(name);
                command.Options.Add(depth);
                command.Options.Add(relationType);
                command.Options.Add(limit);
                command.Options.Add(includeInvalid);
            });
    }

    private static Command Path()
    {
        var from = new Argument<string>("from") { Description = "Start entity." };
        var to = new Argument<string>("to") { Description = "End entity." };
        var includeInvalid = IncludeInvalid();
        return MemoryCommand.Create("path", "Show a shortest path between two entities (exit 1 when there is none).", async context =>
            WriteGraph(context, await context.Client.PathAsync(context.Get(from)!, context.Get(to)!, context.Get(includeInvalid), context.CancellationToken)),
            configure: command =>
            {
                command.Arguments.Add(from);
                command.Arguments.Add(to);
                command.Options.Add(includeInvalid);
            });
    }

    private static Command DeleteEntity()
    {
        var names = new Argument<string[]>("names") { Description = "Entities to delete, with their observations and relations.", Arity = ArgumentArity.OneOrMore };
        return MemoryCommand.Create("delete-entity", "Delete entities with their observations and every relation touching them (exit 1, nothing deleted, if one does not exist).", async context =>
        {
            var wanted = context.Get(names) ?? [];
            // Naming an entity that does not exist is exit 1, as for every command that names something;
            // checked first so a typo deletes nothing.
            RefuseMissing(wanted, await context.Client.OpenNodesAsync(wanted, includeInvalid: true, context.CancellationToken));
            var result = await context.Client.DeleteEntitiesAsync(wanted, context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, result);
                return;
            }
            context.Output.WriteLine($"Deleted {result.Deleted} entit{(result.Deleted == 1 ? "y" : "ies")}.");
        }, configure: command => command.Arguments.Add(names));
    }

    /// <summary>Every name given must be an entity; the ones that are not are named in one not-found error.</summary>
    private static void RefuseMissing(IReadOnlyList<string> wanted, KnowledgeGraph found)
    {
        var present = found.Entities.Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var missing = wanted.Select(n => n.Trim()).Where(n => n.Length > 0 && !present.Contains(n)).Distinct(StringComparer.Ordinal).ToList();
        if (missing.Count > 0)
        {
            throw new NotFoundException(missing.Count == 1
                ? $"no entity named '{missing[0]}'"
                : $"no entities named {string.Join(", ", missing.Select(n => $"'{n}'"))}");
        }
    }

    private static Option<bool> IncludeInvalid() => new("--include-invalid")
    {
        Description = "Also show observations and relations whose validity has ended (marked).",
    };

    private static void WriteGraph(CommandContext context, KnowledgeGraph graph)
    {
        if (context.Json)
        {
            JsonOutput.Write(context.Output, graph);
        }
        else
        {
            GraphView.Write(context.Output, graph);
        }
    }
}
