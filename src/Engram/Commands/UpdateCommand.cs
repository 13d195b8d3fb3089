using System.CommandLine;
using System.Text.Json;
using Engram.Cli.Output;
using Engram.Core.Common;
using Engram.Core.Memories;

namespace Engram.Cli.Commands;

/// <summary><c>engram update ID</c>: change some fields of a memory, leave the rest (PATCH /v1/memories/{id}).</summary>
internal static class UpdateCommand
{
    public static Command Create()
    {
        var id = new Argument<string>("id") { Description = "The memory's id." };
        var content = OptionFactory.Text("--content", "New content; - reads it from stdin.", "TEXT");
        var fields = new MemoryFieldOptions(forUpdate: true);
        var clearValence = Flag("--clear-valence", "Remove the valence.");
        var clearTags = Flag("--clear-tags", "Remove every tag.");
        var clearEntities = Flag("--clear-entities", "Remove every entity.");
        var clearMetadata = Flag("--clear-metadata", "Remove all metadata.");
        var clearSource = Flag("--clear-source", "Remove the source.");
        var clearExpiry = Flag("--clear-expiry", "Keep the memory for good (undo --ttl).");
        var ifVersion = OptionFactory.WholeNumber("--if-version", "Only update if the memory is still at this version (exit 1 otherwise).");

        return MemoryCommand.Create("update", "Change fields of a memory; fields not given stay as they are.", async context =>
        {
            var memoryId = CliInput.MemoryId(context.Get(id)!);
            var patch = new MemoryPatch();
            if (context.Get(content) is { } text)
            {
                patch = patch with { Content = CliInput.Content(text, Console.In) };
            }
            if (context.Get(fields.Type) is { } type)
            {
                patch = patch with { Type = type };
            }
            if (context.Get(fields.Tier) is { } tier)
            {
                patch = patch with { Tier = CliInput.Tier(tier) };
            }
            if (context.Get(fields.Importance) is { } importance)
            {
                patch = patch with { Importance = importance };
            }
            patch = patch with
            {
                Valence = SetOrClear(context.Get(fields.Valence), context.Get(clearValence), "--valence", "--clear-valence"),
                Tags = SetOrClear<IReadOnlyList<string>>(CliInput.List(context.Get(fields.Tags), "--tag"), context.Get(clearTags), "--tag", "--clear-tags"),
                Entities = SetOrClear<IReadOnlyList<string>>(CliInput.Names(context.Get(fields.Entities)), context.Get(clearEntities), "--entity", "--clear-entities"),
                Metadata = SetOrClear(context.Get(fields.Metadata) is { } json ? CliInput.Metadata(json) : (JsonElement?)null, context.Get(clearMetadata), "--metadata", "--clear-metadata"),
                Source = SetOrClear(context.Get(fields.Source), context.Get(clearSource), "--source", "--clear-source"),
                TtlSeconds = SetOrClear(context.Get(fields.Ttl), context.Get(clearExpiry), "--ttl", "--clear-expiry"),
            };
            // Every field of an empty patch is an absent Optional, so record equality spots "nothing given".
            if (patch == new MemoryPatch())
            {
                throw new ValidationException("update", "nothing to update: give at least one field to change (see engram update --help)");
            }

            var written = await context.Client.UpdateAsync(memoryId, patch, IfVersion(context.Get(ifVersion)), context.CancellationToken);
            if (context.Json)
            {
                JsonOutput.Write(context.Output, written);
                return;
            }
            context.Output.WriteLine($"Updated {written.Id}: now version {written.Version} (seq {written.Seq}).");
            context.Output.WriteLine();
            MemoryView.Write(context.Output, written);
        }, configure: command =>
        {
            command.Arguments.Add(id);
            command.Options.Add(content);
            fields.AddTo(command);
            foreach (var option in new[] { clearValence, clearTags, clearEntities, clearMetadata, clearSource, clearExpiry })
            {
                command.Options.Add(option);
            }
            command.Options.Add(ifVersion);
        });
    }

    private static Option<bool> Flag(string name, string description) => new(name) { Description = description };

    /// <summary>A version to match: versions start at 1, so 0 or less could only ever fail (as a confusing "version mismatch").</summary>
    private static long? IfVersion(long? version) => version is null or >= 1
        ? version
        : throw new ValidationException("--if-version", $"--if-version must be a version, 1 or more (got {version})");

    /// <summary>A value sets the field, the clear flag sets it to null, neither leaves it absent; both is a mistake.</summary>
    private static Optional<T?> SetOrClear<T>(T? value, bool clear, string setFlag, string clearFlag) where T : class =>
        (value, clear) switch
        {
            (not null, true) => throw new ValidationException(setFlag.TrimStart('-'), $"give {setFlag} or {clearFlag}, not both"),
            (not null, false) => new Optional<T?>(value),
            (null, true) => new Optional<T?>(null),
            _ => default,
        };

    private static Optional<T?> SetOrClear<T>(T? value, bool clear, string setFlag, string clearFlag) where T : struct =>
        (value, clear) switch
        {
            (not null, true) => throw new ValidationException(setFlag.TrimStart('-'), $"give {setFlag} or {clearFlag}, not both"),
            (not null, false) => new Optional<T?>(value),
            (null, true) => new Optional<T?>(null),
            _ => default,
        };
}
