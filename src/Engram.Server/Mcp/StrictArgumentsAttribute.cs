namespace Engram.Server.Mcp;

/// <summary>
/// Marks tools (a class of them or one method) whose calls are refused when they carry an argument the
/// tool does not take (<see cref="McpArgumentCheck"/> checks it against the input schema): a misspelt
/// filter such as "limit" for memory_search's "k" must not be silently ignored, as REST refuses
/// unknown fields. Not on the graph tools, which accept what the reference memory server accepts.
/// </summary>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Method, Inherited = false)]
internal sealed class StrictArgumentsAttribute : Attribute;
