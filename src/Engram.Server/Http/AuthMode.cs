namespace Engram.Server.Http;

/// <summary>
/// Whether open mode (no keys: every request acts as admin of tenant <c>default</c>) may apply: only
/// when the server listens on loopback alone. On any other address, revoking the last key leaves every
/// route refused instead of opening them.
/// </summary>
internal sealed record AuthMode(bool OpenAllowed);
