using System.Xml.Linq;
using Engram.Core.Storage.Transfer;
using Microsoft.AspNetCore.DataProtection.Repositories;

namespace Engram.Server.Ui;

/// <summary>
/// The web UI's Data Protection keys (what encrypts the login cookie) in the store itself, one <c>store_meta</c> row
/// per key: every Engram instance on one PostgreSQL database then reads the same key ring, so a login made on one
/// instance is accepted by the others behind a load balancer, and a SQLite store carries its keys in its one file
/// (backups included). Keys an older Engram kept in <c>DATA/ui-keys</c> are copied in the first time the ring is
/// read, so existing logins survive the upgrade.
/// <para>
/// <see cref="IXmlRepository"/> is synchronous; Data Protection calls it when it loads or refreshes the key ring (at
/// the first cookie, then about once a day) and when it creates a key (every 90 days), so the waits are rare.
/// </para>
/// </summary>
internal sealed class StoreKeyRepository(IStoreTransfer store, string legacyFolder) : IXmlRepository
{
    /// <summary>The prefix of the key rows in <c>store_meta</c>; the rest of the row's key is the key's friendly name.</summary>
    public const string MetaPrefix = Core.Operations.StoreMetaTransfer.UiDataProtectionPrefix; // carried by logical backups and migrations

    private int _legacyChecked;

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        var rows = Wait(store.ListMetaAsync(MetaPrefix));
        if (rows.Count == 0 && Interlocked.Exchange(ref _legacyChecked, 1) == 0 && ImportLegacy() > 0)
        {
            rows = Wait(store.ListMetaAsync(MetaPrefix));
        }
        return [.. rows.Select(row => XElement.Parse(row.Value))];
    }

    public void StoreElement(XElement element, string friendlyName) =>
        Wait(store.SetMetaAsync(MetaPrefix + friendlyName, element.ToString(SaveOptions.DisableFormatting)));

    /// <summary>Copies the key files of <c>DATA/ui-keys</c> into the store; how many.</summary>
    private int ImportLegacy()
    {
        if (!Directory.Exists(legacyFolder))
        {
            return 0;
        }
        var imported = 0;
        foreach (var file in Directory.EnumerateFiles(legacyFolder, "*.xml"))
        {
            XElement element;
            try
            {
                element = XElement.Load(file);
            }
            catch (System.Xml.XmlException)
            {
                continue; // not a key file
            }
            StoreElement(element, Path.GetFileNameWithoutExtension(file));
            imported++;
        }
        return imported;
    }

    /// <summary>Runs the store call on the pool (so no caller's context is captured) and waits for it.</summary>
    private static T Wait<T>(Task<T> task) => task.ConfigureAwait(false).GetAwaiter().GetResult();

    private static void Wait(Task task) => task.ConfigureAwait(false).GetAwaiter().GetResult();
}
