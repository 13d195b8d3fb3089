using System.Globalization;
using Engram.Core.Common;
using Engram.Core.KeyValue;
using Engram.Core.Security;
using Engram.Core.Storage;

namespace Engram.Server.Telegram;

/// <summary>
/// The bot's update offset (the next update_id it takes), kept in the key-value store of both backends under a
/// reserved partition of the default tenant (<c>default␟engram=telegram-bot</c>): no API key reaches it (a key's
/// partition is only ever <c>user_id=</c> or <c>agent_id=</c>), and it survives a restart, so an update handled
/// before the restart is not handled again.
/// </summary>
internal sealed class TelegramOffsets(IKeyValueStore store, string botId)
{
    /// <summary>The store-level owner of the offset entries.</summary>
    public static readonly Caller Owner = new(ScopeGuard.InternalPartition(Caller.DefaultTenant, "telegram-bot"), "system:telegram-bot");

    private string Key => "offset:" + botId;

    public async Task<long?> LoadAsync(CancellationToken ct)
    {
        var entry = await store.GetKvAsync(Owner, Key, ct);
        return entry is not null && long.TryParse(entry.ValueJson, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var offset) ? offset : null;
    }

    public Task SaveAsync(long offset, CancellationToken ct) =>
        store.SetKvAsync(Owner, new KvWrite(Key, offset.ToString(CultureInfo.InvariantCulture), null), WriteDurability.Full, ct: ct);
}
