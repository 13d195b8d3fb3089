using System.Globalization;
using System.IO.Enumeration;
using System.Text;
using Engram.Core.Common;

namespace Engram.Server.Resp;

/// <summary>
/// The server's commands: PING, INFO, CLIENT, CONFIG GET, MEMORY USAGE, OBJECT ENCODING and COMMAND, answered
/// from Engram's own state in Redis's reply shapes.
/// </summary>
internal sealed partial class RespConnection
{
    private void Ping()
    {
        if (_argCount > 2)
        {
            WrongArity();
        }
        else if (_argCount == 2)
        {
            _reply.Bulk(Arg(1));
        }
        else
        {
            _reply.Raw("+PONG\r\n"u8);
        }
    }

    private async ValueTask InfoAsync(Caller caller, CancellationToken ct)
    {
        var wanted = _argCount > 1 ? Encoding.ASCII.GetString(Arg(1)).ToLowerInvariant() : "default";
        bool Wants(string section) => wanted is "default" or "all" or "everything" || wanted == section;
        var text = new StringBuilder();
        if (Wants("server"))
        {
            var process = Environment.ProcessId;
            text.Append("# Server\r\n")
                .Append("redis_version:").Append(RespListener.RedisVersion).Append("\r\n")
                .Append("engram_version:").Append(typeof(RespConnection).Assembly.GetName().Version).Append("\r\n")
                .Append("redis_mode:standalone\r\n")
                .Append("process_id:").Append(process).Append("\r\n")
                .Append("tcp_port:").Append(_listener.Port).Append("\r\n")
                .Append("uptime_in_seconds:").Append((long)_listener.Uptime.TotalSeconds).Append("\r\n")
                .Append("\r\n");
        }
        if (Wants("clients"))
        {
            // No command blocks (no BLPOP and the like); redis-cli --stat prints garbage when the field is missing.
            text.Append("# Clients\r\nconnected_clients:").Append(_listener.ConnectionCount).Append("\r\nblocked_clients:").Append(_listener.BlockedCount)
                .Append("\r\n\r\n");
        }
        if (Wants("stats"))
        {
            var stats = _listener.Stats;
            stats.Add(_tally); // this connection's commands so far, this INFO included
            text.Append("# Stats\r\ntotal_connections_received:").Append(stats.Accepted).Append("\r\n")
                .Append("total_commands_processed:").Append(stats.TotalCommands).Append("\r\n")
                .Append("total_net_input_bytes:").Append(stats.BytesIn).Append("\r\n")
                .Append("total_net_output_bytes:").Append(stats.BytesOut).Append("\r\n")
                .Append("rejected_connections:").Append(stats.Closed(RespStats.ClosedMaxClients)).Append("\r\n")
                .Append("total_error_replies:").Append(stats.TotalErrors).Append("\r\n")
                .Append("engram_closed_idle_timeout:").Append(stats.Closed(RespStats.ClosedIdle)).Append("\r\n")
                .Append("engram_closed_oversized_input:").Append(stats.Closed(RespStats.ClosedOversized)).Append("\r\n")
                .Append("engram_closed_protocol_error:").Append(stats.Closed(RespStats.ClosedProtocol)).Append("\r\n")
                .Append("engram_closed_cross_protocol:").Append(stats.Closed(RespStats.ClosedCrossProtocol)).Append("\r\n\r\n");
        }
        if (wanted is "all" or "everything" or "commandstats")
        {
            var stats = _listener.Stats;
            stats.Add(_tally);
            text.Append("# Commandstats\r\n");
            for (var i = 0; i < RespStats.CommandNames.Length; i++)
            {
                if (stats.Commands(i) is var calls && calls > 0)
                {
                    text.Append("cmdstat_").Append(RespStats.CommandNames[i]).Append(":calls=").Append(calls).Append("\r\n");
                }
            }
            text.Append("\r\n");
        }
        if (wanted is "all" or "everything" or "errorstats")
        {
            var stats = _listener.Stats;
            text.Append("# Errorstats\r\n");
            for (var i = 0; i < RespStats.ErrorKinds.Length; i++)
            {
                if (stats.Errors(i) is var count && count > 0)
                {
                    text.Append("errorstat_").Append(RespStats.ErrorKinds[i]).Append(":count=").Append(count).Append("\r\n");
                }
            }
            text.Append("\r\n");
        }
        if (Wants("memory"))
        {
            var used = GC.GetTotalMemory(false);
            text.Append("# Memory\r\nused_memory:").Append(used).Append("\r\n")
                .Append("used_memory_rss:").Append(Environment.WorkingSet).Append("\r\n")
                .Append("number_of_cached_scripts:").Append(_listener.Scripts.CachedCount).Append("\r\n")
                .Append("engram_arriving_bytes:").Append(_listener.ArrivingBytes).Append("\r\n")
                .Append("engram_max_arriving_bytes:").Append(_options.MaxArrivingBytes).Append("\r\n\r\n");
        }
        if (Wants("persistence"))
        {
            // Every write is appended to the key's history before it is acknowledged (Redis's AOF, with appendfsync no or
            // always as CONFIG GET reports it); backups are the snapshots (RDB saves).
            text.Append("# Persistence\r\nloading:0\r\nasync_loading:0\r\nrdb_bgsave_in_progress:0\r\nrdb_last_save_time:").Append(LastSaveSeconds)
                .Append("\r\nrdb_last_bgsave_status:").Append(Engram.Core.Operations.BackupMetrics.LastFailed ? "err" : "ok")
                .Append("\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\nengram_durability:").Append(_kv.Options.Durability.ToString().ToLowerInvariant())
                .Append("\r\n\r\n");
        }
        if (Wants("replication"))
        {
            text.Append("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n");
        }
        if (Wants("keyspace"))
        {
            text.Append("# Keyspace\r\n");
            var count = await _kv.CountAsync(caller, ct).ConfigureAwait(false);
            if (count.Keys > 0)
            {
                text.Append("db0:keys=").Append(count.Keys).Append(",expires=").Append(count.Expiring).Append(",avg_ttl=").Append(count.AverageTtlMs).Append("\r\n");
            }
        }
        _reply.Bulk(text.ToString());
    }

    private void Client()
    {
        if (_argCount < 2)
        {
            WrongArity();
            return;
        }
        var sub = Encoding.ASCII.GetString(Arg(1)).ToUpperInvariant();
        switch (sub)
        {
            case "SETNAME" when _argCount == 3:
                if (TrySetName(Text(2)))
                {
                    _reply.Ok();
                }
                return;
            case "GETNAME" when _argCount == 2:
                if (Name is null)
                {
                    _reply.Null();
                }
                else
                {
                    _reply.Bulk(Name);
                }
                return;
            case "ID" when _argCount == 2:
                _reply.Integer(Id);
                return;
            case "SETINFO" when _argCount == 4:
                // Accepted and not kept, as Redis checks it: a known attribute, and a value CLIENT LIST could show.
                var attribute = Encoding.ASCII.GetString(Arg(2)).ToLowerInvariant();
                if (attribute is not ("lib-name" or "lib-ver"))
                {
                    _reply.Error($"ERR Unrecognized option '{Encoding.UTF8.GetString(Arg(2))}'");
                }
                else if (!IsPrintableName(Text(3)))
                {
                    _reply.Error($"ERR {attribute} cannot contain spaces, newlines or special characters.");
                }
                else
                {
                    _reply.Ok();
                }
                return;
            case "INFO" when _argCount == 2:
                _reply.Bulk(ClientLine(this, "client|info"));
                return;
            case "LIST":
                ClientList();
                return;
            case "SETNAME" or "GETNAME" or "ID" or "SETINFO" or "INFO":
                _reply.Error($"ERR wrong number of arguments for 'client|{sub.ToLowerInvariant()}' command");
                return;
            default:
                _reply.Error($"ERR unknown subcommand '{Encoding.UTF8.GetString(Arg(1))}'. Try CLIENT HELP.");
                return;
        }
    }

    /// <summary>
    /// CLIENT LIST [TYPE type | ID id ...], with Redis 7.0's checks: one filter, a known type (every connection here is
    /// <c>normal</c>; <c>master</c>, <c>replica</c>/<c>slave</c> and <c>pubsub</c> list none), whole-number ids. The
    /// connections of this client's tenant only (in open mode: every loopback client); before AUTH, itself.
    /// </summary>
    private void ClientList()
    {
        HashSet<long>? ids = null;
        var none = false;
        if (_argCount > 3 && Is(2, "ID"u8))
        {
            ids = [];
            for (var i = 3; i < _argCount; i++)
            {
                if (!TryLong(i, out var id))
                {
                    _reply.Error("ERR Invalid client ID");
                    return;
                }
                ids.Add(id);
            }
        }
        else if (_argCount == 4 && Is(2, "TYPE"u8))
        {
            if (!(Is(3, "NORMAL"u8) || Is(3, "MASTER"u8) || Is(3, "REPLICA"u8) || Is(3, "SLAVE"u8) || Is(3, "PUBSUB"u8)))
            {
                _reply.Error($"ERR Unknown client type '{Printable(Arg(3))}'");
                return;
            }
            none = !Is(3, "NORMAL"u8);
        }
        else if (_argCount != 2)
        {
            _reply.Error(Syntax);
            return;
        }
        var anonymousOpen = _authenticated is null && !_listener.Keys.HasActiveKeys;
        var lines = new StringBuilder();
        foreach (var other in _listener.Connections.OrderBy(c => c.Id))
        {
            if (!none && (ids is null || ids.Contains(other.Id))
                && (other == this || (Tenant is not null && other.Tenant == Tenant) || (anonymousOpen && other.Tenant is null)))
            {
                lines.Append(ClientLine(other, "client|list"));
            }
        }
        _reply.Bulk(lines.ToString());
    }

    /// <summary>
    /// CONFIG GET pattern…: the Redis settings clients and tools ask for (redis-benchmark warned "Could not fetch server
    /// CONFIG" without it), answered from Engram's own. Read-only: Engram reads its settings at start, so CONFIG SET,
    /// REWRITE and RESETSTAT are refused with the reason.
    /// </summary>
    private void Config()
    {
        var sub = _argCount >= 2 ? Encoding.ASCII.GetString(Arg(1)).ToUpperInvariant() : "";
        switch (sub)
        {
            case "" or "GET" when _argCount < 3:
                _reply.Error($"ERR wrong number of arguments for '{(sub.Length == 0 ? "config" : "config|get")}' command");
                return;
            case "GET":
                var patterns = Enumerable.Range(2, _argCount - 2).Select(Text).ToList();
                var matched = ConfigValues().Where(p => patterns.Any(pattern => FileSystemName.MatchesSimpleExpression(pattern, p.Name, ignoreCase: true))).ToList();
                _reply.Map(matched.Count);
                foreach (var (name, value) in matched)
                {
                    _reply.Bulk(name);
                    _reply.Bulk(value);
                }
                return;
            case "SET" or "REWRITE" or "RESETSTAT":
                _reply.Error($"ERR CONFIG {sub} is not supported: Engram reads its settings (Engram:Resp, Engram:KeyValue) at start");
                return;
            default:
                _reply.Error($"ERR unknown subcommand '{Encoding.UTF8.GetString(Arg(1))}'. Try CONFIG HELP.");
                return;
        }
    }

    /// <summary>
    /// MEMORY USAGE key [SAMPLES n]: an estimate of the bytes the key's entry takes in the store (its key, its value as
    /// stored, about 64 bytes of the row's other columns; its history is not counted), nil for a missing key: what
    /// <c>redis-cli --memkeys</c> reads.
    /// </summary>
    private async ValueTask MemoryAsync(Caller caller, CancellationToken ct)
    {
        var sub = _argCount >= 2 ? Encoding.ASCII.GetString(Arg(1)).ToUpperInvariant() : "";
        if (sub != "USAGE")
        {
            _reply.Error(sub.Length == 0 ? "ERR wrong number of arguments for 'memory' command" : $"ERR unknown subcommand '{Encoding.UTF8.GetString(Arg(1))}'. Try MEMORY HELP.");
            return;
        }
        if (_argCount < 3)
        {
            _reply.Error("ERR wrong number of arguments for 'memory|usage' command");
            return;
        }
        for (var i = 3; i < _argCount; i += 2) // SAMPLES n, parsed as Redis does (any number: one value is no sample)
        {
            if (!Is(i, "SAMPLES"u8) || i + 1 >= _argCount)
            {
                _reply.Error(Syntax);
                return;
            }
            if (!TryLong(i + 1, out _))
            {
                _reply.Error(WrongInteger);
                return;
            }
        }
        var key = Text(2);
        var entry = await _kv.GetEntryAsync(caller, key, ct).ConfigureAwait(false);
        if (entry is null)
        {
            _reply.Null();
            return;
        }
        _reply.Integer(Encoding.UTF8.GetByteCount(key) + Encoding.UTF8.GetByteCount(entry.ValueJson) + StoredEntryOverheadBytes);
    }

    /// <summary>What a stored entry takes beyond its key and value: tenant, version, seq, times and the B-tree cell (about).</summary>
    private const int StoredEntryOverheadBytes = 64;

    private IEnumerable<(string Name, string Value)> ConfigValues()
    {
        var endpoint = _options.EndPoint();
        var full = _kv.Options.Durability == Core.Storage.WriteDurability.Full;
        return
        [
            ("appendonly", "yes"), // every write is in the store before it is acknowledged
            ("appendfsync", full ? "always" : "no"), // relaxed: synced by the next full write or checkpoint
            ("save", ""),
            ("databases", "1"),
            ("bind", endpoint.Address.ToString()),
            ("port", _listener.Port.ToString(CultureInfo.InvariantCulture)),
            ("maxclients", _options.MaxConnections.ToString(CultureInfo.InvariantCulture)),
            ("timeout", _options.IdleTimeoutSeconds.ToString(CultureInfo.InvariantCulture)),
            ("proto-max-bulk-len", _options.MaxCommandBytes.ToString(CultureInfo.InvariantCulture)),
            ("maxmemory", "0"),
            ("maxmemory-policy", "noeviction"),
        ];
    }

    /// <summary>
    /// One line of CLIENT LIST / CLIENT INFO in Redis's format (the fields clients read); <paramref name="running"/> is the
    /// command this connection runs (its own line's <c>cmd</c>; other connections' last commands are not kept).
    /// </summary>
    private string ClientLine(RespConnection c, string running)
    {
        var now = Environment.TickCount64;
        return string.Create(CultureInfo.InvariantCulture,
            $"id={c.Id} addr={c.Remote} name={c.Name} age={(now - c.OpenedAt) / 1000} idle={(now - c.LastActivity) / 1000} db=0 resp={(c == this && _reply.Resp3 ? 3 : 2)} cmd={(c == this ? running : "NULL")} tot-net-in={c.TotalBytesIn} tot-net-out={c.TotalBytesOut} tot-cmds={c.TotalCommands}\n");
    }

    /// <summary>OBJECT ENCODING key (int, embstr or raw, as Redis would keep the value; nil for a missing key), OBJECT HELP.</summary>
    private async ValueTask ObjectAsync(Caller caller, CancellationToken ct)
    {
        if (_argCount == 3 && Is(1, "ENCODING"u8))
        {
            var entry = await _kv.GetEntryAsync(caller, Text(2), ct).ConfigureAwait(false);
            if (entry is null)
            {
                _reply.Null();
                return;
            }
            var json = entry.ValueJson;
            _reply.Bulk(long.TryParse(json, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _) ? "int"
                : Encoding.UTF8.GetByteCount(json) - 2 <= 44 ? "embstr" : "raw");
            return;
        }
        if (_argCount == 2 && Is(1, "HELP"u8))
        {
            _reply.Lines(["OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:", "ENCODING <key>"]);
            return;
        }
        _reply.Error($"ERR unknown subcommand or wrong number of arguments for '{(_argCount > 1 ? Encoding.UTF8.GetString(Arg(1)) : "")}'. Try OBJECT HELP.");
    }

    /// <summary>
    /// COMMAND, COMMAND COUNT, COMMAND INFO [name…], COMMAND LIST [FILTERBY PATTERN p | MODULE m], COMMAND GETKEYS, COMMAND
    /// DOCS (empty), COMMAND HELP: what clients probe (redis-cli's hints, cluster clients' key positions).
    /// </summary>
    private void CommandInfo()
    {
        var sub = _argCount > 1 ? Encoding.ASCII.GetString(Arg(1)).ToUpperInvariant() : "";
        switch (sub)
        {
            case "":
                _reply.Array(Commands.Length);
                foreach (var command in Commands)
                {
                    WriteCommand(command);
                }
                return;
            case "COUNT":
                _reply.Integer(Commands.Length);
                return;
            case "INFO" when _argCount == 2:
                goto case "";
            case "INFO":
                _reply.Array(_argCount - 2);
                for (var i = 2; i < _argCount; i++)
                {
                    if (FindCommand(i) is { } found)
                    {
                        WriteCommand(found);
                    }
                    else
                    {
                        _reply.Null();
                    }
                }
                return;
            case "LIST":
                CommandList();
                return;
            case "GETKEYS":
                CommandGetKeys();
                return;
            case "DOCS":
                _reply.Map(0);
                return;
            case "HELP":
                _reply.Lines(
                [
                    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                    "(no subcommand)", "    Return details about all commands.",
                    "COUNT", "    Return the total number of commands.",
                    "GETKEYS <full-command>", "    Return the keys from a full command.",
                    "INFO [<command-name> ...]", "    Return details about the named commands, or all of them.",
                    "LIST [FILTERBY (MODULE <module-name>|PATTERN <pattern>)]", "    Return the names of the commands, filtered.",
                    "DOCS [<command-name> ...]", "    Return documentary information (none here).",
                    "HELP", "    Print this help.",
                ]);
                return;
            default:
                _reply.Error($"ERR unknown subcommand '{Encoding.UTF8.GetString(Arg(1))}'. Try COMMAND HELP.");
                return;
        }
    }

    private CommandSpec? FindCommand(int arg)
    {
        var wanted = Encoding.UTF8.GetString(Arg(arg)).ToLowerInvariant();
        var found = Array.FindIndex(Commands, c => c.Name == wanted);
        return found < 0 ? null : Commands[found];
    }

    /// <summary>COMMAND LIST [FILTERBY PATTERN p | MODULE m] (no modules here: that filter lists nothing).</summary>
    private void CommandList()
    {
        if (_argCount == 2)
        {
            _reply.Array(Commands.Length);
            foreach (var command in Commands)
            {
                _reply.Bulk(command.Name);
            }
            return;
        }
        if (_argCount != 5 || !Is(2, "FILTERBY"u8) || !(Is(3, "PATTERN"u8) || Is(3, "MODULE"u8)))
        {
            _reply.Error(Syntax);
            return;
        }
        if (Is(3, "MODULE"u8))
        {
            _reply.Array(0);
            return;
        }
        var pattern = Encoding.UTF8.GetString(Arg(4)); // as CONFIG GET matches: * and ? (Redis's [] classes are not needed for names)
        var names = Commands.Where(c => FileSystemName.MatchesSimpleExpression(pattern, c.Name, ignoreCase: true)).ToArray();
        _reply.Array(names.Length);
        foreach (var command in names)
        {
            _reply.Bulk(command.Name);
        }
    }

    /// <summary>COMMAND GETKEYS command arg…: the key arguments, by the command's key positions (a script's by its numkeys).</summary>
    private void CommandGetKeys()
    {
        if (_argCount < 3)
        {
            WrongArity();
            return;
        }
        if (FindCommand(2) is not { } command)
        {
            _reply.Error("ERR Invalid command specified");
            return;
        }
        var argc = _argCount - 2; // the command's own arguments, its name included
        if (command.Arity > 0 ? argc != command.Arity : argc < -command.Arity)
        {
            _reply.Error("ERR Invalid number of arguments specified for command");
            return;
        }
        var keys = new List<int>();
        if (command.Movable)
        {
            if (!TryLong(4, out var numKeys) || numKeys < 0 || numKeys > argc - 3)
            {
                _reply.Error(!TryLong(4, out _) ? WrongInteger
                    : numKeys < 0 ? "ERR Number of keys can't be negative"
                    : "ERR Number of keys can't be greater than number of args");
                return;
            }
            for (var i = 0; i < numKeys; i++)
            {
                keys.Add(5 + i);
            }
        }
        else if (command.First > 0)
        {
            var last = command.Last < 0 ? argc - 1 : command.Last;
            for (var k = command.First; k <= last; k += command.Step)
            {
                keys.Add(2 + k);
            }
        }
        if (keys.Count == 0)
        {
            _reply.Error("ERR The command has no key arguments");
            return;
        }
        _reply.Array(keys.Count);
        foreach (var at in keys)
        {
            _reply.Bulk(Arg(at));
        }
    }

    private void WriteCommand(CommandSpec command)
    {
        _reply.Array(6);
        _reply.Bulk(command.Name);
        _reply.Integer(command.Arity);
        _reply.Array(command.Movable ? 2 : 1);
        _reply.Simple(command.Write ? "write" : "readonly");
        if (command.Movable)
        {
            _reply.Simple("movablekeys");
        }
        _reply.Integer(command.First);
        _reply.Integer(command.Last);
        _reply.Integer(command.First == 0 ? 0 : command.Step);
    }
}
