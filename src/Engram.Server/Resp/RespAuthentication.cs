using System.Text;
using Engram.Core.Common;

namespace Engram.Server.Resp;

/// <summary>Who a connection acts for: AUTH, HELLO's AUTH and SETNAME, and the key re-checked once a second, as over HTTP.</summary>
internal sealed partial class RespConnection
{
    private Caller? _authenticated;
    private string? _presentedKey;
    private long _checkedAt;

    /// <summary>The caller when <see cref="CallerAsync"/> would know it without reading anything (no key check or refresh due).</summary>
    private bool TryCallerNow([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Caller? caller)
    {
        if (_authenticated is not null)
        {
            caller = _authenticated;
            return _presentedKey is null || Environment.TickCount64 - _checkedAt <= 1000;
        }
        var keys = _listener.Keys;
        caller = _listener.OpenCaller;
        return _loopback && !keys.RefreshDue && !keys.HasActiveKeys;
    }

    /// <summary>
    /// The caller of this connection: the key's (AUTH), re-checked once a second so a revoked key stops
    /// working as it does over HTTP; with no keys at all, a loopback client acts as the open-mode caller.
    /// </summary>
    private ValueTask<Caller?> CallerAsync(CancellationToken ct) =>
        _transactionCaller is not null ? new(_transactionCaller) // EXEC checked it for the whole transaction
        : TryCallerNow(out var caller) ? new(caller) : CheckCallerAsync(ct);

    private async ValueTask<Caller?> CheckCallerAsync(CancellationToken ct)
    {
        var keys = _listener.Keys;
        if (_authenticated is not null)
        {
            var now = Environment.TickCount64;
            if (_presentedKey is not null && now - _checkedAt > 1000)
            {
                if (OnEventThread)
                {
                    await Task.Yield(); // the key check may read the store
                }
                _checkedAt = now;
                if (await keys.AuthenticateAsync(_presentedKey, ct).ConfigureAwait(false) is null)
                {
                    _authenticated = null;
                    _presentedKey = null;
                }
            }
            if (_authenticated is not null)
            {
                return _authenticated;
            }
        }
        if (keys.RefreshDue && OnEventThread)
        {
            await Task.Yield(); // the refresh reads the store
        }
        await keys.RefreshIfDueAsync(ct).ConfigureAwait(false);
        return !keys.HasActiveKeys && _loopback ? _listener.OpenCaller : null;
    }

    private static bool IPAddressIsLoopback(System.Net.IPEndPoint remote) =>
        System.Net.IPAddress.IsLoopback(remote.Address.IsIPv4MappedToIPv6 ? remote.Address.MapToIPv4() : remote.Address);

    private async ValueTask AuthAsync(CancellationToken ct)
    {
        if (_argCount < 2)
        {
            WrongArity();
            return;
        }
        if (_argCount > 3)
        {
            _reply.Error(Syntax); // as Redis: AUTH takes a password, or a user and a password
            return;
        }
        if (_argCount == 3 && !Is(1, "DEFAULT"u8))
        {
            await DenyAsync("a user other than 'default'", ct).ConfigureAwait(false);
            return;
        }
        if (await TryAuthenticateAsync(Text(_argCount - 1), ct).ConfigureAwait(false))
        {
            _reply.Ok();
        }
    }

    /// <summary>Checks the key; on failure writes the error reply (WRONGPASS, or a throttle error) and returns false.</summary>
    private async ValueTask<bool> TryAuthenticateAsync(string presented, CancellationToken ct)
    {
        var keys = _listener.Keys;
        await keys.RefreshIfDueAsync(ct).ConfigureAwait(false);
        if (!keys.HasActiveKeys)
        {
            _reply.Error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            return false;
        }
        var key = await keys.AuthenticateAsync(presented, ct).ConfigureAwait(false);
        if (key is null)
        {
            await DenyAsync("unknown, revoked or expired key", ct).ConfigureAwait(false);
            return false;
        }
        _authenticated = new Caller(key.Tenant, key.Actor, key.Role, key.Scope, key.Id);
        _presentedKey = presented;
        _checkedAt = Environment.TickCount64;
        return true;
    }

    private ValueTask DenyAsync(string reason, CancellationToken ct)
    {
        _ = ct;
        if (!_listener.Throttle.TryCount(Remote?.Address, out _))
        {
            _reply.Error("ERR too many bad API keys from this address; wait before trying again");
            _closeAfterReply = true;
        }
        else
        {
            _reply.Error("WRONGPASS invalid username-password pair or user is disabled.");
        }
        _listener.AuditDenied(Remote, reason);
        return ValueTask.CompletedTask;
    }

    private async ValueTask HelloAsync(CancellationToken ct)
    {
        var position = 1;
        var protocol = _reply.Resp3 ? 3L : 2L;
        if (_argCount > 1)
        {
            if (!TryLong(1, out protocol))
            {
                _reply.Error("ERR Protocol version is not an integer or out of range");
                return;
            }
            if (protocol is < 2 or > 3)
            {
                _reply.Error("NOPROTO unsupported protocol version");
                return;
            }
            position = 2;
        }
        string? name = null;
        while (position < _argCount)
        {
            if (Is(position, "AUTH"u8) && position + 2 < _argCount)
            {
                if (!Is(position + 1, "DEFAULT"u8))
                {
                    await DenyAsync("a user other than 'default'", ct).ConfigureAwait(false);
                    return;
                }
                if (!await TryAuthenticateAsync(Text(position + 2), ct).ConfigureAwait(false))
                {
                    return;
                }
                position += 3;
            }
            else if (Is(position, "SETNAME"u8) && position + 1 < _argCount)
            {
                name = Text(position + 1);
                position += 2;
            }
            else
            {
                _reply.Error($"ERR Syntax error in HELLO option '{Encoding.UTF8.GetString(Arg(position))}'");
                return;
            }
        }
        if (await CallerAsync(ct).ConfigureAwait(false) is null)
        {
            _reply.Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
            return;
        }
        if (name is not null && !TrySetName(name))
        {
            return; // as Redis: the name is checked as CLIENT SETNAME checks it, and a bad one ends HELLO with its error
        }
        _reply.Resp3 = protocol == 3;
        _reply.Map(7);
        _reply.Bulk("server");
        _reply.Bulk("redis");
        _reply.Bulk("version");
        _reply.Bulk(RespListener.RedisVersion);
        _reply.Bulk("proto");
        _reply.Integer(protocol);
        _reply.Bulk("id");
        _reply.Integer(Id);
        _reply.Bulk("mode");
        _reply.Bulk("standalone");
        _reply.Bulk("role");
        _reply.Bulk("master");
        _reply.Bulk("modules");
        _reply.Array(0);
    }
}
