using System.CommandLine;
using Engram.Cli.Output;
using Engram.Core.Memories;

namespace Engram.Cli.Commands;

/// <summary><c>engram add "content"</c>: remember something (POST /v1/memories).</summary>
internal static class AddCommand
{
    public static Command Create()
    {
        var content = new Argument<string>("content") { Description = "What to remember; - reads it from stdin." };
        var fields = new MemoryFieldOptions();
        var scope = new ScopeOptions("store it under");
        var onDuplicate = OptionFactory.Choice("--on-duplicate",
            "When the same content already exists in this scope: return the existing memory (default), reject (exit 1), or allow a second copy.",
            "return", "reject", "allow");

        return MemoryCommand.Create("add", "Remember something.", async context =>
        {
            var metadata = context.Get(fields.Metadata);
            var tier = context.Get(fields.Tier);
            var request = new NewMemory
            {
                Content = CliInput.Content(context.Get(content)!, Console.In),
                Type = context.Get(fields.Type),
                Tier = tier is null ? null : CliInput.Tier(tier),
                Importance = context.Get(fields.Importance),
                Valence = context.Get(fields.Valence),
                Tags = CliInput.List(context.Get(fields.Tags), "--tag"),
                Entities = CliInput.Names(context.Get(fields.Entities)),
                Metadata = metadata is null ? null : CliInput.Metadata(metadata),
                UserId = context.Get(scope.User),
                AgentId = context.Get(scope.Agent),
                SessionId = context.Get(scope.Session),
                Namespace = context.Get(scope.Namespace),
                Source = context.Get(fields.Source),
                TtlSeconds = context.Get(fields.Ttl),
            };
            var policy = DuplicatePolicies.Parse(context.Get(onDuplicate)); // the flag's values are limited to the three words

            var written = await context.Client.AddAsync(request, policy, context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, written);
                return;
            }
            context.Output.WriteLine(written.Duplicate
                ? $"Already remembered as {written.Id}; nothing new was stored."
                : $"Remembered {written.Id} (seq {written.Seq}).");
            context.Output.WriteLine();
            MemoryView.Write(context.Output, written);
        }, createsData: true, configure: command =>
        {
            command.Arguments.Add(content);
            fields.AddTo(command);
            scope.AddTo(command);
            command.Options.Add(onDuplicate);
        });
    }
}
