using System.Text.Json;
using Engram.Core.Common;

namespace Engram.Core.Llm;

/// <summary>
/// Where a conversation goes to have memories extracted from it: <c>POST /v1/memories</c> with <c>messages</c> and
/// <c>infer</c>, and the chat's <c>remember: true</c>. The conversation is stored durably before this returns, and its
/// extraction runs as a job in the background.
/// </summary>
public interface IConversationExtractor
{
    /// <summary>Stores <paramref name="conversation"/> and queues its extraction; returns the job's id (GET /v1/jobs/{id}).</summary>
    Task<string> EnqueueAsync(Caller caller, Conversation conversation, CancellationToken ct = default);
}

/// <summary>One message of a conversation, as OpenAI-style clients send it (role: user, assistant, system, tool).</summary>
public sealed record ConversationMessage(string Role, string Content, string? Name = null);

/// <summary>A conversation to extract memories from, with the scope and metadata the resulting memories get.</summary>
public sealed record Conversation(IReadOnlyList<ConversationMessage> Messages)
{
    public string? UserId { get; init; }

    public string? AgentId { get; init; }

    public string? SessionId { get; init; }

    public string? Namespace { get; init; }

    /// <summary>Copied onto every memory extracted (a JSON object), as on a plain create.</summary>
    public JsonElement? Metadata { get; init; }

    /// <summary>Where the conversation came from ("api", "chat", "proxy", "telegram", ...).</summary>
    public string? Source { get; init; }
}
