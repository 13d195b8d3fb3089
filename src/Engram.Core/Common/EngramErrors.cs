namespace Engram.Core.Common;

/// <summary>A request the caller can fix. Interfaces map each kind to a status code and a problem body.</summary>
public abstract class EngramException(string title, string detail) : Exception(detail)
{
    /// <summary>A short, stable summary of the kind of problem.</summary>
    public string Title { get; } = title;
}

/// <summary>Input that breaks a rule; <see cref="Field"/> names the offending field (JSON name).</summary>
public sealed class ValidationException(string field, string detail)
    : EngramException("Invalid request", detail)
{
    public string Field { get; } = field;
}

public sealed class NotFoundException(string detail) : EngramException("Not found", detail);

/// <summary>The caller is known but its role or scope does not allow the action (HTTP 403).</summary>
public sealed class ForbiddenException(string detail) : EngramException("Forbidden", detail);

/// <summary>The write conflicts with what is stored (a duplicate the caller asked to reject, a stale version).</summary>
public sealed class ConflictException(string detail, string? existingId = null) : EngramException("Conflict", detail)
{
    public string? ExistingId { get; } = existingId;
}

/// <summary>The caller's precondition (If-Match version) no longer holds.</summary>
public sealed class PreconditionFailedException(string detail, long currentVersion)
    : EngramException("Precondition failed", detail)
{
    public long CurrentVersion { get; } = currentVersion;
}
