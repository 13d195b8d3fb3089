using Engram.Core.Memories;

namespace Engram.Core.Search;

public sealed partial class DocTable
{
    internal void Write(BinaryWriter writer)
    {
        var symbols = new string[_symbols.Count];
        foreach (var (value, id) in _symbols)
        {
            symbols[id] = value;
        }
        writer.Write(symbols.Length);
        foreach (var symbol in symbols)
        {
            writer.Write(symbol);
        }
        writer.Write(NextDoc);
        for (var doc = 0; doc < NextDoc; doc++)
        {
            ref readonly var d = ref _docs[doc];
            writer.Write(d.Live);
            if (!d.Live)
            {
                continue; // a retired version only keeps its number
            }
            writer.Write(d.Id);
            writer.Write((byte)d.Tier);
            writer.Write(d.Importance);
            writer.Write(d.Tenant);
            writer.Write(d.User);
            writer.Write(d.Agent);
            writer.Write(d.Session);
            writer.Write(d.Namespace);
            writer.Write(d.Source);
            writer.Write(d.Type);
            writer.Write(d.Tags.Length);
            foreach (var tag in d.Tags)
            {
                writer.Write(tag);
            }
            writer.Write(d.Entities.Length);
            foreach (var entity in d.Entities)
            {
                writer.Write(entity);
            }
            writer.Write(d.CreatedAtMs);
            writer.Write(d.UpdatedAtMs);
            writer.Write(d.ExpiresAtMs);
            writer.Write(d.Superseded);
        }
    }

    internal static DocTable Read(BinaryReader reader)
    {
        var table = new DocTable();
        var symbols = new string[reader.ReadInt32()];
        for (var i = 0; i < symbols.Length; i++)
        {
            symbols[i] = reader.ReadString();
            table._symbols.Add(symbols[i], i);
        }
        var next = reader.ReadInt32();
        table._docs = new DocInfo[Math.Max(1024, next)];
        for (var doc = 0; doc < next; doc++)
        {
            if (!reader.ReadBoolean())
            {
                table._docs[doc] = new DocInfo { Id = string.Empty, Tags = [], Entities = [] };
                continue;
            }
            var info = new DocInfo
            {
                Live = true,
                Id = reader.ReadString(),
                Tier = (MemoryTier)reader.ReadByte(),
                Importance = reader.ReadSingle(),
                Tenant = reader.ReadInt32(),
                User = reader.ReadInt32(),
                Agent = reader.ReadInt32(),
                Session = reader.ReadInt32(),
                Namespace = reader.ReadInt32(),
                Source = reader.ReadInt32(),
                Type = reader.ReadInt32(),
            };
            var tags = new int[reader.ReadInt32()];
            for (var t = 0; t < tags.Length; t++)
            {
                tags[t] = reader.ReadInt32();
            }
            info.Tags = tags;
            var entityCount = reader.ReadInt32();
            int[] entities = entityCount == 0 ? [] : new int[entityCount];
            for (var e = 0; e < entities.Length; e++)
            {
                entities[e] = reader.ReadInt32();
            }
            info.Entities = entities;
            foreach (var entity in entities)
            {
                table._entityNames.Add(info.Tenant, entity, symbols[entity]);
            }
            info.CreatedAtMs = reader.ReadInt64();
            info.UpdatedAtMs = reader.ReadInt64();
            info.ExpiresAtMs = reader.ReadInt64();
            info.Superseded = reader.ReadBoolean();
            table._docs[doc] = info;
            table._docById[info.Id] = doc;
        }
        table.NextDoc = next;
        return table;
    }
}
