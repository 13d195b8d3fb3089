using System.CommandLine;
using Engram.Cli.Client;
using Engram.Cli.Output;
using Engram.Core;
using Engram.Core.Common;
using Engram.Core.Llm;
using Engram.Core.Reflection;
using Engram.Core.Security;

namespace Engram.Cli.Commands;

/// <summary>
/// <c>engram reflect</c>: one reflection run in process on a data folder (--data) or a PostgreSQL database (--store), as the
/// server's schedule and <c>POST /v1/reflect</c> run it: near-duplicates merged by the model (flagged without one) and
/// reflection memories per changed scope. The model comes from the server's settings (LLM_BASE_URL, LLM_MODEL, LLM_API_KEY).
/// </summary>
internal static class ReflectCommand
{
    public static Command Create()
    {
        var data = ReindexCommand.DataOption();
        var store = StoreOption.Create();
        var user = OptionFactory.Text("--user-id", "Only scopes of this user.", "ID");
        var agent = OptionFactory.Text("--agent-id", "Only scopes of this agent.", "ID");
        var session = OptionFactory.Text("--session-id", "Only scopes of this session.", "ID");
        var ns = OptionFactory.Text("--namespace", "Only scopes in this namespace.", "NS");
        var tenant = OptionFactory.Text("--tenant", $"The tenant to reflect on (default {Caller.DefaultTenant}).", "T");
        var allTenants = new Option<bool>("--all-tenants") { Description = "Every tenant (as the scheduled job runs); not with --tenant." };
        var dryRun = new Option<bool>("--dry-run") { Description = "Show what would be written (the model is still asked); write nothing, move no watermark." };
        var duplicatesOnly = new Option<bool>("--duplicates-only") { Description = "Only near-duplicates: needs no model (flagged without one, merged with one)." };
        var json = new Option<bool>("--json") { Description = "Print the report as one JSON object (and errors as JSON on stderr)." };
        var command = new Command("reflect",
            "Reflect on what changed since the last run, per scope: merge near-duplicates (flag them without a model) and write reflection memories " +
            "derived from the new ones (needs LLM_BASE_URL and LLM_MODEL unless --duplicates-only). Never deletes.")
        {
            data, store, user, agent, session, ns, tenant, allTenants, dryRun, duplicatesOnly, json,
        };
        command.SetAction(async (parse, ct) =>
        {
            var asJson = parse.GetValue(json);
            try
            {
                var location = StoreOption.ResolveExisting(parse.GetValue(store), parse.GetValue(data));
                var all = parse.GetValue(allTenants);
                if (all && parse.GetValue(tenant) is not null)
                {
                    throw new ValidationException("--all-tenants", "--all-tenants and --tenant do not go together");
                }
                var caller = new Caller(parse.GetValue(tenant) is { } t ? TenantNames.Require(t, "--tenant") : Caller.DefaultTenant, "cli:reflect");
                var options = ConfiguredOptions.Load();
                if (!parse.GetValue(dryRun))
                {
                    ConfiguredOptions.RefuseIfReadOnly("reflect (it links and writes memories)");
                }
                await using var engine = EngramEngine.Open(location, options.Limits, options.Search, options.Embeddings.CreateProvider(options.Outbound));
                using var llm = new LlmAccess(LanguageModel.CreateIfConfigured(options.Llm, options.Outbound));
                var reflections = new ReflectionService(engine, llm, options.Reflect);
                var report = await reflections.RunAsync(caller, new ReflectRequest
                {
                    UserId = parse.GetValue(user),
                    AgentId = parse.GetValue(agent),
                    SessionId = parse.GetValue(session),
                    Namespace = parse.GetValue(ns),
                    DryRun = parse.GetValue(dryRun),
                    DuplicatesOnly = parse.GetValue(duplicatesOnly),
                }, all, ct);
                if (asJson)
                {
                    JsonOutput.Write(Console.Out, report);
                    return ExitCodes.Ok;
                }
                foreach (var scope in report.Scopes)
                {
                    var name = new ReflectionScope("", scope.UserId, scope.AgentId, scope.SessionId, scope.Namespace).ToString();
                    Console.WriteLine($"{name}: {scope.NewMemories} new memories");
                    foreach (var reflection in scope.Reflections)
                    {
                        Console.WriteLine($"  reflection {reflection.Id ?? "(dry run)"}: {Text.OneLine(reflection.Content, 80)} <- {string.Join(", ", reflection.DerivedFrom)}");
                    }
                    foreach (var duplicate in scope.Duplicates)
                    {
                        Console.WriteLine($"  {duplicate.Action} {duplicate.DuplicateId} duplicate_of {duplicate.KeptId} (cosine {duplicate.Similarity:0.000})");
                    }
                }
                Console.WriteLine((report.DryRun ? "Dry run, nothing written: " : "") +
                    $"{report.ScopesChanged} changed scopes, {report.MemoriesRead} memories read, {report.ReflectionsWritten} reflections, " +
                    $"{report.DuplicatesFlagged} duplicates flagged, {report.DuplicatesMerged} merged" + (report.ModelUsed ? "." : " (no language model configured)."));
                return ExitCodes.Ok;
            }
            catch (Exception ex)
            {
                return ErrorReporter.Report(ex, Console.Error, asJson, command);
            }
        });
        return command;
    }
}
