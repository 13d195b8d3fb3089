namespace Engram.Core.Storage.Sqlite;

/// <summary>
/// Schema migrations, applied in order at start inside one write transaction each. The version
/// table records what was applied; a database newer than this binary is refused, never touched.
/// </summary>
internal static class SqliteSchema
{
    /// <summary>Index i holds the script that takes the schema from version i to i + 1.</summary>
    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE memories (
            rid              INTEGER PRIMARY KEY,
            id               TEXT    NOT NULL UNIQUE,
            tenant           TEXT    NOT NULL,
            content          TEXT    NOT NULL,
            content_hash     TEXT    NOT NULL,
            type             TEXT    NOT NULL,
            tier             TEXT    NOT NULL,
            importance       REAL    NOT NULL,
            valence          REAL,
            tags             TEXT    NOT NULL, -- JSON array, the source of truth; memory_tags indexes it
            metadata         TEXT    NOT NULL, -- JSON object
            user_id          TEXT,
            agent_id         TEXT,
            session_id       TEXT,
            namespace        TEXT,
            source           TEXT,
            created_at       INTEGER NOT NULL, -- unix milliseconds, UTC
            updated_at       INTEGER NOT NULL,
            last_accessed_at INTEGER,
            access_count     INTEGER NOT NULL DEFAULT 0,
            expires_at       INTEGER,
            valid_from       INTEGER,
            valid_to         INTEGER,
            version          INTEGER NOT NULL,
            seq              INTEGER NOT NULL  -- change-log sequence of the last change
        );
        CREATE INDEX memories_tenant_id ON memories(tenant, id);
        CREATE INDEX memories_tenant_hash ON memories(tenant, content_hash);
        CREATE INDEX memories_tenant_user ON memories(tenant, user_id, id);
        CREATE INDEX memories_expires ON memories(expires_at) WHERE expires_at IS NOT NULL;

        CREATE TABLE memory_tags (
            rid INTEGER NOT NULL REFERENCES memories(rid) ON DELETE CASCADE,
            tag TEXT    NOT NULL,
            PRIMARY KEY (tag, rid)
        ) WITHOUT ROWID;
        CREATE INDEX memory_tags_rid ON memory_tags(rid);

        CREATE TABLE memory_history (
            hid       INTEGER PRIMARY KEY,
            tenant    TEXT    NOT NULL,
            memory_id TEXT    NOT NULL,
            seq       INTEGER NOT NULL,
            event     TEXT    NOT NULL,
            actor     TEXT    NOT NULL,
            at        INTEGER NOT NULL,
            version   INTEGER NOT NULL,
            changes   TEXT    NOT NULL
        );
        CREATE INDEX memory_history_memory ON memory_history(tenant, memory_id, hid);

        CREATE TABLE changelog (
            seq       INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant    TEXT    NOT NULL,
            entity    TEXT    NOT NULL,
            entity_id TEXT    NOT NULL,
            op        TEXT    NOT NULL,
            at        INTEGER NOT NULL
        );
        """,
        // 2: an identity for the store, so derived files (index snapshots) can tell they belong to it
        // and not to an older copy restored over it.
        """
        CREATE TABLE store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO store_meta(key, value) VALUES ('store_id', lower(hex(randomblob(16))));
        """,
        // 3: the knowledge graph (entities, observations, relations) and its history. Relations and
        // observations cascade with their entity; the store still deletes them itself first so that
        // each one gets a history entry.
        """
        CREATE TABLE graph_entities (
            tenant      TEXT    NOT NULL,
            name        TEXT    NOT NULL,
            entity_type TEXT    NOT NULL,
            created_at  INTEGER NOT NULL,
            updated_at  INTEGER NOT NULL,
            PRIMARY KEY (tenant, name)
        ); -- a rowid table: reads list entities in creation order, like the MCP server

        CREATE TABLE graph_observations (
            oid         INTEGER PRIMARY KEY,
            tenant      TEXT    NOT NULL,
            entity_name TEXT    NOT NULL,
            content     TEXT    NOT NULL,
            valid_from  INTEGER,
            valid_to    INTEGER,
            created_at  INTEGER NOT NULL,
            UNIQUE (tenant, entity_name, content),
            FOREIGN KEY (tenant, entity_name) REFERENCES graph_entities(tenant, name) ON DELETE CASCADE
        );

        CREATE TABLE graph_relations (
            rid           INTEGER PRIMARY KEY,
            tenant        TEXT    NOT NULL,
            from_name     TEXT    NOT NULL,
            to_name       TEXT    NOT NULL,
            relation_type TEXT    NOT NULL,
            weight        REAL,
            valid_from    INTEGER,
            valid_to      INTEGER,
            created_at    INTEGER NOT NULL,
            UNIQUE (tenant, from_name, to_name, relation_type),
            FOREIGN KEY (tenant, from_name) REFERENCES graph_entities(tenant, name) ON DELETE CASCADE,
            FOREIGN KEY (tenant, to_name) REFERENCES graph_entities(tenant, name) ON DELETE CASCADE
        );
        CREATE INDEX graph_relations_to ON graph_relations(tenant, to_name);

        CREATE TABLE graph_history (
            hid         INTEGER PRIMARY KEY,
            tenant      TEXT    NOT NULL,
            seq         INTEGER NOT NULL,
            event       TEXT    NOT NULL,
            actor       TEXT    NOT NULL,
            at          INTEGER NOT NULL,
            entity_name TEXT    NOT NULL,
            other_name  TEXT,             -- a relation's other end, so both ends find it
            changes     TEXT    NOT NULL
        );
        CREATE INDEX graph_history_entity ON graph_history(tenant, entity_name, hid);
        CREATE INDEX graph_history_other ON graph_history(tenant, other_name, hid) WHERE other_name IS NOT NULL;
        """,
        // 4: key-value state beside memories. Keyed by (tenant, key) so every lookup is one index
        // seek confined to the tenant; history is its own table because a key is not a memory id.
        """
        CREATE TABLE kv_entries (
            tenant     TEXT    NOT NULL,
            key        TEXT    NOT NULL, -- the stored key (tenant segment inserted, see KvKeys)
            value      TEXT    NOT NULL, -- JSON text
            expires_at INTEGER,          -- unix milliseconds; NULL never expires
            version    INTEGER NOT NULL,
            seq        INTEGER NOT NULL, -- change-log sequence of the last change
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (tenant, key)
        ) WITHOUT ROWID;
        CREATE INDEX kv_entries_expires ON kv_entries(expires_at) WHERE expires_at IS NOT NULL;

        CREATE TABLE kv_history (
            hid        INTEGER PRIMARY KEY,
            tenant     TEXT    NOT NULL,
            key        TEXT    NOT NULL,
            seq        INTEGER NOT NULL,
            event      TEXT    NOT NULL,
            actor      TEXT    NOT NULL,
            at         INTEGER NOT NULL,
            version    INTEGER NOT NULL,
            value      TEXT,             -- JSON text after the change; NULL for deletions and TTL changes
            expires_at INTEGER
        );
        CREATE INDEX kv_history_key ON kv_history(tenant, key, hid);
        """,
        // 5: key-value history becomes a chain (each row points at the key's previous one, the entry
        // at the newest; kv_deleted keeps the newest for deleted keys) so a write appends its history
        // row instead of also inserting into kv_history_key at a random position. Existing history is
        // linked with that index before it is dropped.
        """
        ALTER TABLE kv_history ADD COLUMN prev_hid INTEGER;
        ALTER TABLE kv_entries ADD COLUMN last_hid INTEGER;
        CREATE TABLE kv_deleted (
            tenant   TEXT    NOT NULL,
            key      TEXT    NOT NULL,
            last_hid INTEGER NOT NULL, -- newest history row of a key that no longer exists
            PRIMARY KEY (tenant, key)
        ) WITHOUT ROWID;
        UPDATE kv_history SET prev_hid = (SELECT MAX(h.hid) FROM kv_history h
            WHERE h.tenant = kv_history.tenant AND h.key = kv_history.key AND h.hid < kv_history.hid);
        UPDATE kv_entries SET last_hid = (SELECT MAX(h.hid) FROM kv_history h WHERE h.tenant = kv_entries.tenant AND h.key = kv_entries.key);
        INSERT INTO kv_deleted(tenant, key, last_hid)
            SELECT h.tenant, h.key, MAX(h.hid) FROM kv_history h
            WHERE NOT EXISTS (SELECT 1 FROM kv_entries e WHERE e.tenant = h.tenant AND e.key = h.key)
            GROUP BY h.tenant, h.key;
        DROP INDEX kv_history_key;
        """,
        // 6: the entities a memory names. Like tags: the JSON array on the row is the source of truth
        // (existing rows name none), memory_entities indexes it by the case-folded name for filters.
        """
        ALTER TABLE memories ADD COLUMN entities TEXT NOT NULL DEFAULT '[]'; -- JSON array of names as given
        CREATE TABLE memory_entities (
            rid      INTEGER NOT NULL REFERENCES memories(rid) ON DELETE CASCADE,
            name_key TEXT    NOT NULL, -- EntityNames.Key: trimmed, NFC, lower-cased
            PRIMARY KEY (name_key, rid)
        ) WITHOUT ROWID;
        CREATE INDEX memory_entities_rid ON memory_entities(rid);
        """,
        // 7: key-value write-behind (SqliteKvWriteBehind): kv_entries may lag the history, and every
        // history row at or below this watermark is reflected there. Existing files are fully folded.
        // Older engrams must not open such a file: they would read kv_entries as the whole truth.
        """
        INSERT INTO store_meta(key, value) SELECT 'kv_folded_hid', coalesce(max(hid), 0) FROM kv_history;
        """,
    ];

    public static int LatestVersion => Migrations.Length;

    /// <param name="upTo">Stop at this version instead of the latest (tests build databases of earlier versions).</param>
    public static void Migrate(SqliteConnection connection, long nowMs, int? upTo = null)
    {
        var target = upTo ?? LatestVersion;
        connection.Execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
        // Another process may be migrating the same file: take the write lock, then look.
        connection.Execute("BEGIN IMMEDIATE");
        try
        {
            var current = (int)(connection.ScalarInt64("SELECT MAX(version) FROM schema_version") ?? 0);
            if (current > LatestVersion)
            {
                throw new StoreException(
                    $"the database '{connection.Path}' has schema version {current}, newer than this engram understands " +
                    $"(up to {LatestVersion}). Run a newer engram, or restore a backup made by this version.");
            }
            for (var version = current; version < target; version++)
            {
                connection.Execute(Migrations[version]);
                connection.ExecuteNonQuery("INSERT INTO schema_version(version, applied_at) VALUES (?1, ?2)", version + 1, nowMs);
            }
            connection.Execute("COMMIT");
        }
        catch
        {
            connection.Execute("ROLLBACK");
            throw;
        }
    }

    public static int CurrentVersion(SqliteConnection connection) =>
        (int)(connection.ScalarInt64("SELECT MAX(version) FROM schema_version") ?? 0);
}
