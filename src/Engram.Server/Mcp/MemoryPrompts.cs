using System.ComponentModel;
using System.Text;
using ModelContextProtocol.Protocol;
using ModelContextProtocol.Server;

namespace Engram.Server.Mcp;

/// <summary>
/// Prompts a client offers its user as commands ("/recall tea"): each asks the model to use the memory
/// tools the right way, so the user does not have to know their names or arguments.
/// </summary>
[McpServerPromptType]
internal sealed class MemoryPrompts
{
    [McpServerPrompt(Name = "recall", Title = "What do you remember about…")]
    [Description("Ask what is remembered about a topic: the model searches the memory and summarises what it found, saying so when nothing is.")]
    public static PromptMessage Recall(
        [Description("The person, project or topic to recall, e.g. \"Ana's travel plans\".")] string topic,
        [Description("Only memories about this user (optional).")] string? user_id = null)
    {
        var text = new StringBuilder()
            .Append("What do you remember about ").Append(topic.Trim()).Append("?\n\n")
            .Append("Call the memory_search tool with query \"").Append(topic.Trim()).Append('"')
            .Append(user_id is { Length: > 0 } ? $" and user_id \"{user_id}\"" : "")
            .Append(". If the results point to a more specific question, search again with it. ")
            .Append("Then summarise what the memories say, newest facts first where they conflict, and mention when each was recorded if it matters. ")
            .Append("Say plainly if nothing relevant was found; do not guess or fill gaps from general knowledge.")
            .ToString();
        return new PromptMessage { Role = Role.User, Content = new TextContentBlock { Text = text } };
    }

    [McpServerPrompt(Name = "remember", Title = "Remember this")]
    [Description("Ask the model to remember something: it splits the text into self-contained facts, checks what is already stored and stores or updates each.")]
    public static PromptMessage Remember(
        [Description("What to remember, in your own words, e.g. \"I moved to Lisbon in May and now work at Acme\".")] string text,
        [Description("The user the facts are about (optional).")] string? user_id = null)
    {
        var scope = user_id is { Length: > 0 } ? $" with user_id \"{user_id}\"" : "";
        var prompt = new StringBuilder()
            .Append("Please remember this:\n\n").Append(text.Trim()).Append("\n\n")
            .Append("Split it into short, self-contained facts (one fact per memory, with names instead of pronouns). ")
            .Append("For each fact, first call memory_search").Append(scope).Append(" to see whether it is already known: ")
            .Append("if a memory says the same, leave it; if one says something the fact replaces, change it with memory_update; ")
            .Append("otherwise store it with memory_store").Append(scope).Append(", a fitting type (fact, preference, decision, event) and the entities it names. ")
            .Append("Finally, list what you stored or changed.")
            .ToString();
        return new PromptMessage { Role = Role.User, Content = new TextContentBlock { Text = prompt } };
    }
}
