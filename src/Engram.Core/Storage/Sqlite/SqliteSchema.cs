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
        // 8: every table STRICT (SQLite 3.37+), so the engine itself refuses a value of the wrong type
        // (text in a timestamp, say) instead of storing it as it comes. SQLite cannot alter a table
        // into STRICT, so each one is rebuilt by its documented procedure: create the new table, copy,
        // drop the old, rename, recreate its indexes. Migrate runs this with foreign keys off (a DROP of
        // memories would otherwise cascade into its tags) and checks them before it commits. Rowids,
        // the AUTOINCREMENT high-water mark of the change log and WITHOUT ROWID stay as they were.
        """
        CREATE TABLE memories_new (
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
            seq              INTEGER NOT NULL, -- change-log sequence of the last change
            entities         TEXT    NOT NULL DEFAULT '[]', -- JSON array of names as given
            -- The metadata in SQLite's binary JSON, for the metadata filters: a JSON path over jsonb
            -- skips the text parse per row. metadata stays the truth and what reads return, as given.
            metadata_jsonb   BLOB    GENERATED ALWAYS AS (jsonb(metadata)) STORED
        ) STRICT;
        INSERT INTO memories_new (rid, id, tenant, content, content_hash, type, tier, importance, valence, tags, metadata, user_id, agent_id,
                session_id, namespace, source, created_at, updated_at, last_accessed_at, access_count, expires_at, valid_from, valid_to,
                version, seq, entities)
            SELECT rid, id, tenant, content, content_hash, type, tier, importance, valence, tags, metadata, user_id, agent_id,
                session_id, namespace, source, created_at, updated_at, last_accessed_at, access_count, expires_at, valid_from, valid_to,
                version, seq, entities FROM memories;

        CREATE TABLE memory_tags_new (
            rid INTEGER NOT NULL REFERENCES memories(rid) ON DELETE CASCADE,
            tag TEXT    NOT NULL,
            PRIMARY KEY (tag, rid)
        ) STRICT, WITHOUT ROWID;
        INSERT INTO memory_tags_new (rid, tag) SELECT rid, tag FROM memory_tags;

        CREATE TABLE memory_entities_new (
            rid      INTEGER NOT NULL REFERENCES memories(rid) ON DELETE CASCADE,
            name_key TEXT    NOT NULL, -- EntityNames.Key: trimmed, NFC, lower-cased
            PRIMARY KEY (name_key, rid)
        ) STRICT, WITHOUT ROWID;
        INSERT INTO memory_entities_new (rid, name_key) SELECT rid, name_key FROM memory_entities;

        CREATE TABLE memory_history_new (
            hid       INTEGER PRIMARY KEY,
            tenant    TEXT    NOT NULL,
            memory_id TEXT    NOT NULL,
            seq       INTEGER NOT NULL,
            event     TEXT    NOT NULL,
            actor     TEXT    NOT NULL,
            at        INTEGER NOT NULL,
            version   INTEGER NOT NULL,
            changes   TEXT    NOT NULL
        ) STRICT;
        INSERT INTO memory_history_new (hid, tenant, memory_id, seq, event, actor, at, version, changes)
            SELECT hid, tenant, memory_id, seq, event, actor, at, version, changes FROM memory_history;

        CREATE TABLE changelog_new (
            seq       INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant    TEXT    NOT NULL,
            entity    TEXT    NOT NULL,
            entity_id TEXT    NOT NULL,
            op        TEXT    NOT NULL,
            at        INTEGER NOT NULL
        ) STRICT;
        INSERT INTO changelog_new (seq, tenant, entity, entity_id, op, at) SELECT seq, tenant, entity, entity_id, op, at FROM changelog;
        -- The copy sets the new table's counter to its largest seq; the old counter may be higher (a
        -- change log whose newest entries were removed), and a sequence number is never given twice.
        INSERT INTO sqlite_sequence (name, seq) SELECT 'changelog_new', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'changelog_new');
        UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changelog'), 0)) WHERE name = 'changelog_new';

        CREATE TABLE store_meta_new (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
        INSERT INTO store_meta_new (key, value) SELECT key, value FROM store_meta;

        CREATE TABLE graph_entities_new (
            tenant      TEXT    NOT NULL,
            name        TEXT    NOT NULL,
            entity_type TEXT    NOT NULL,
            created_at  INTEGER NOT NULL,
            updated_at  INTEGER NOT NULL,
            PRIMARY KEY (tenant, name)
        ) STRICT; -- a rowid table: reads list entities in creation order, so the copy keeps the rowids
        INSERT INTO graph_entities_new (rowid, tenant, name, entity_type, created_at, updated_at)
            SELECT rowid, tenant, name, entity_type, created_at, updated_at FROM graph_entities;

        CREATE TABLE graph_observations_new (
            oid         INTEGER PRIMARY KEY,
            tenant      TEXT    NOT NULL,
            entity_name TEXT    NOT NULL,
            content     TEXT    NOT NULL,
            valid_from  INTEGER,
            valid_to    INTEGER,
            created_at  INTEGER NOT NULL,
            UNIQUE (tenant, entity_name, content),
            FOREIGN KEY (tenant, entity_name) REFERENCES graph_entities(tenant, name) ON DELETE CASCADE
        ) STRICT;
        INSERT INTO graph_observations_new (oid, tenant, entity_name, content, valid_from, valid_to, created_at)
            SELECT oid, tenant, entity_name, content, valid_from, valid_to, created_at FROM graph_observations;

        CREATE TABLE graph_relations_new (
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
        ) STRICT;
        INSERT INTO graph_relations_new (rid, tenant, from_name, to_name, relation_type, weight, valid_from, valid_to, created_at)
            SELECT rid, tenant, from_name, to_name, relation_type, weight, valid_from, valid_to, created_at FROM graph_relations;

        CREATE TABLE graph_history_new (
            hid         INTEGER PRIMARY KEY,
            tenant      TEXT    NOT NULL,
            seq         INTEGER NOT NULL,
            event       TEXT    NOT NULL,
            actor       TEXT    NOT NULL,
            at          INTEGER NOT NULL,
            entity_name TEXT    NOT NULL,
            other_name  TEXT,             -- a relation's other end, so both ends find it
            changes     TEXT    NOT NULL
        ) STRICT;
        INSERT INTO graph_history_new (hid, tenant, seq, event, actor, at, entity_name, other_name, changes)
            SELECT hid, tenant, seq, event, actor, at, entity_name, other_name, changes FROM graph_history;

        CREATE TABLE kv_entries_new (
            tenant     TEXT    NOT NULL,
            key        TEXT    NOT NULL, -- the stored key (tenant segment inserted, see KvKeys)
            value      TEXT    NOT NULL, -- JSON text
            expires_at INTEGER,          -- unix milliseconds; NULL never expires
            version    INTEGER NOT NULL,
            seq        INTEGER NOT NULL, -- change-log sequence of the last change
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            last_hid   INTEGER,          -- newest history row of the key
            PRIMARY KEY (tenant, key)
        ) STRICT, WITHOUT ROWID;
        INSERT INTO kv_entries_new (tenant, key, value, expires_at, version, seq, created_at, updated_at, last_hid)
            SELECT tenant, key, value, expires_at, version, seq, created_at, updated_at, last_hid FROM kv_entries;

        CREATE TABLE kv_history_new (
            hid        INTEGER PRIMARY KEY,
            tenant     TEXT    NOT NULL,
            key        TEXT    NOT NULL,
            seq        INTEGER NOT NULL,
            event      TEXT    NOT NULL,
            actor      TEXT    NOT NULL,
            at         INTEGER NOT NULL,
            version    INTEGER NOT NULL,
            value      TEXT,             -- JSON text after the change; NULL for deletions and TTL changes
            expires_at INTEGER,
            prev_hid   INTEGER           -- the key's previous history row
        ) STRICT;
        INSERT INTO kv_history_new (hid, tenant, key, seq, event, actor, at, version, value, expires_at, prev_hid)
            SELECT hid, tenant, key, seq, event, actor, at, version, value, expires_at, prev_hid FROM kv_history;

        CREATE TABLE kv_deleted_new (
            tenant   TEXT    NOT NULL,
            key      TEXT    NOT NULL,
            last_hid INTEGER NOT NULL, -- newest history row of a key that no longer exists
            PRIMARY KEY (tenant, key)
        ) STRICT, WITHOUT ROWID;
        INSERT INTO kv_deleted_new (tenant, key, last_hid) SELECT tenant, key, last_hid FROM kv_deleted;

        CREATE TABLE schema_version_new (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT;
        INSERT INTO schema_version_new (version, applied_at) SELECT version, applied_at FROM schema_version;

        DROP TABLE memory_tags;
        DROP TABLE memory_entities;
        DROP TABLE memories;
        DROP TABLE memory_history;
        DROP TABLE changelog;
        DROP TABLE store_meta;
        DROP TABLE graph_observations;
        DROP TABLE graph_relations;
        DROP TABLE graph_entities;
        DROP TABLE graph_history;
        DROP TABLE kv_entries;
        DROP TABLE kv_history;
        DROP TABLE kv_deleted;
        DROP TABLE schema_version;

        ALTER TABLE memories_new RENAME TO memories;
        ALTER TABLE memory_tags_new RENAME TO memory_tags;
        ALTER TABLE memory_entities_new RENAME TO memory_entities;
        ALTER TABLE memory_history_new RENAME TO memory_history;
        ALTER TABLE changelog_new RENAME TO changelog;
        ALTER TABLE store_meta_new RENAME TO store_meta;
        ALTER TABLE graph_entities_new RENAME TO graph_entities;
        ALTER TABLE graph_observations_new RENAME TO graph_observations;
        ALTER TABLE graph_relations_new RENAME TO graph_relations;
        ALTER TABLE graph_history_new RENAME TO graph_history;
        ALTER TABLE kv_entries_new RENAME TO kv_entries;
        ALTER TABLE kv_history_new RENAME TO kv_history;
        ALTER TABLE kv_deleted_new RENAME TO kv_deleted;
        ALTER TABLE schema_version_new RENAME TO schema_version;

        CREATE INDEX memories_tenant_id ON memories(tenant, id);
        CREATE INDEX memories_tenant_hash ON memories(tenant, content_hash);
        CREATE INDEX memories_tenant_user ON memories(tenant, user_id, id);
        CREATE INDEX memories_expires ON memories(expires_at) WHERE expires_at IS NOT NULL;
        CREATE INDEX memory_tags_rid ON memory_tags(rid);
        CREATE INDEX memory_entities_rid ON memory_entities(rid);
        CREATE INDEX memory_history_memory ON memory_history(tenant, memory_id, hid);
        CREATE INDEX graph_relations_to ON graph_relations(tenant, to_name);
        CREATE INDEX graph_history_entity ON graph_history(tenant, entity_name, hid);
        CREATE INDEX graph_history_other ON graph_history(tenant, other_name, hid) WHERE other_name IS NOT NULL;
        CREATE INDEX kv_entries_expires ON kv_entries(expires_at) WHERE expires_at IS NOT NULL;
        """,
        // 9: API keys and the audit log. A key is stored only as its keyed hash (HMAC-SHA256 under the
        // store's secret, store_meta 'api_key_secret', created at first use), found by that hash; the
        // prefix is what lists show. api_keys_generation changes with every key change, so a server
        // notices keys changed by another process (the CLI) without re-reading the table.
        """
        CREATE TABLE api_keys (
            id           TEXT    PRIMARY KEY,
            prefix       TEXT    NOT NULL, -- egm_ and the first 8 characters of the key
            hash         BLOB    NOT NULL UNIQUE,
            tenant       TEXT    NOT NULL,
            role         TEXT    NOT NULL, -- read, write, admin
            user_id      TEXT,             -- scope; NULL does not restrict
            agent_id     TEXT,
            name         TEXT,
            created_at   INTEGER NOT NULL, -- unix milliseconds, UTC
            expires_at   INTEGER,
            revoked_at   INTEGER,
            last_used_at INTEGER           -- updated at most once a minute per key
        ) STRICT;
        CREATE INDEX api_keys_prefix ON api_keys(prefix);
        CREATE INDEX api_keys_tenant ON api_keys(tenant, created_at);

        CREATE TABLE audit_log (
            seq     INTEGER PRIMARY KEY,
            at      INTEGER NOT NULL,
            tenant  TEXT    NOT NULL,
            actor   TEXT    NOT NULL, -- key:<name or prefix>, cli, anonymous
            action  TEXT    NOT NULL, -- key.create, memories.bulk_delete, auth.denied, ...
            target  TEXT,
            outcome TEXT    NOT NULL, -- ok, unauthorized, forbidden
            remote  TEXT,
            detail  TEXT
        ) STRICT;
        CREATE INDEX audit_log_tenant ON audit_log(tenant, seq);

        INSERT INTO store_meta(key, value) VALUES ('api_keys_generation', '0');
        """,
        // 10: embedding vectors, so a restart, a damaged snapshot or a rebuild never re-embeds the corpus
        // (a transformer embeds tens to hundreds of memories a second). One row per memory version and
        // model: n x dims little-endian float32 (n > 1 once long memories are embedded in chunks). A row
        // is written only while that exact version is live; update and delete remove it in their own
        // transaction, and the maintenance loop drops other models' rows.
        """
        CREATE TABLE memory_vectors (
            tenant    TEXT    NOT NULL,
            memory_id TEXT    NOT NULL,
            version   INTEGER NOT NULL,
            model     TEXT    NOT NULL,
            dims      INTEGER NOT NULL,
            count     INTEGER NOT NULL,
            vectors   BLOB    NOT NULL,
            PRIMARY KEY (tenant, memory_id, model, version)
        ) STRICT;
        CREATE INDEX memory_vectors_model ON memory_vectors(model);
        """,
        // 11: counts kept by the writer (GET /v1/stats and the metrics read them instead of a GROUP BY over
        // every memory: 6.9 s at 1M). Triggers keep them in the transaction of every change, whichever code
        // path writes (the store, a cascade, an import, maintenance), so they are exact after a crash; the
        // back-fill counts what exists. kind: memory (by tier and type), kv, entity, relation (tier and type
        // ''). Key-value entries are counted as kv_entries holds them: SqliteKvWriteBehind folds writes into
        // the table within moments. Rows past their TTL count until the sweeper deletes them (stats subtract
        // them, see SqliteMemoryStore.GetStatsAsync). A row that reaches 0 stays, at 0.
        """
        CREATE TABLE row_counts (
            tenant TEXT    NOT NULL,
            kind   TEXT    NOT NULL,
            tier   TEXT    NOT NULL,
            type   TEXT    NOT NULL,
            n      INTEGER NOT NULL,
            PRIMARY KEY (tenant, kind, tier, type)
        ) STRICT, WITHOUT ROWID;
        INSERT INTO row_counts(tenant, kind, tier, type, n) SELECT tenant, 'memory', tier, type, COUNT(*) FROM memories GROUP BY tenant, tier, type;
        INSERT INTO row_counts(tenant, kind, tier, type, n) SELECT tenant, 'kv', '', '', COUNT(*) FROM kv_entries GROUP BY tenant;
        INSERT INTO row_counts(tenant, kind, tier, type, n) SELECT tenant, 'entity', '', '', COUNT(*) FROM graph_entities GROUP BY tenant;
        INSERT INTO row_counts(tenant, kind, tier, type, n) SELECT tenant, 'relation', '', '', COUNT(*) FROM graph_relations GROUP BY tenant;

        CREATE TRIGGER memories_count_insert AFTER INSERT ON memories BEGIN
            INSERT INTO row_counts(tenant, kind, tier, type, n) VALUES (new.tenant, 'memory', new.tier, new.type, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER memories_count_delete AFTER DELETE ON memories BEGIN
            UPDATE row_counts SET n = n - 1 WHERE tenant = old.tenant AND kind = 'memory' AND tier = old.tier AND type = old.type;
        END;
        CREATE TRIGGER memories_count_update AFTER UPDATE OF tenant, tier, type ON memories
            WHEN old.tenant IS NOT new.tenant OR old.tier IS NOT new.tier OR old.type IS NOT new.type BEGIN
            UPDATE row_counts SET n = n - 1 WHERE tenant = old.tenant AND kind = 'memory' AND tier = old.tier AND type = old.type;
            INSERT INTO row_counts(tenant, kind, tier, type, n) VALUES (new.tenant, 'memory', new.tier, new.type, 1)
                ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER kv_entries_count_insert AFTER INSERT ON kv_entries BEGIN
            INSERT INTO row_counts(tenant, kind, tier, type, n) VALUES (new.tenant, 'kv', '', '', 1) ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER kv_entries_count_delete AFTER DELETE ON kv_entries BEGIN
            UPDATE row_counts SET n = n - 1 WHERE tenant = old.tenant AND kind = 'kv' AND tier = '' AND type = '';
        END;
        CREATE TRIGGER graph_entities_count_insert AFTER INSERT ON graph_entities BEGIN
            INSERT INTO row_counts(tenant, kind, tier, type, n) VALUES (new.tenant, 'entity', '', '', 1) ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER graph_entities_count_delete AFTER DELETE ON graph_entities BEGIN
            UPDATE row_counts SET n = n - 1 WHERE tenant = old.tenant AND kind = 'entity' AND tier = '' AND type = '';
        END;
        CREATE TRIGGER graph_relations_count_insert AFTER INSERT ON graph_relations BEGIN
            INSERT INTO row_counts(tenant, kind, tier, type, n) VALUES (new.tenant, 'relation', '', '', 1) ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER graph_relations_count_delete AFTER DELETE ON graph_relations BEGIN
            UPDATE row_counts SET n = n - 1 WHERE tenant = old.tenant AND kind = 'relation' AND tier = '' AND type = '';
        END;
        """,
        // Extraction (issue 16): a superseded memory names its successor; conversations are kept as they came
        // (with their own history), and each is extracted by a durable job (leased, retried, resumable).
        // memories.superseded_by is not added here but by EnsureSupersededBy, at every migration: files made at an
        // older version for the tests (OpenAtSchemaVersion) are written by today's code, which writes the column.
        """
        CREATE TABLE conversations (
            id         TEXT    PRIMARY KEY,
            tenant     TEXT    NOT NULL,
            body       TEXT    NOT NULL,
            created_at INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE conversation_history (
            hid             INTEGER PRIMARY KEY AUTOINCREMENT,
            tenant          TEXT    NOT NULL,
            conversation_id TEXT    NOT NULL,
            event           TEXT    NOT NULL,
            actor           TEXT    NOT NULL,
            at              INTEGER NOT NULL,
            detail          TEXT
        ) STRICT;
        CREATE INDEX conversation_history_conversation ON conversation_history(conversation_id, hid);
        CREATE TABLE extraction_jobs (
            id              TEXT    PRIMARY KEY,
            tenant          TEXT    NOT NULL,
            conversation_id TEXT    NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            actor           TEXT    NOT NULL,
            status          TEXT    NOT NULL,
            attempts        INTEGER NOT NULL DEFAULT 0,
            next_attempt_at INTEGER NOT NULL,
            lease_owner     TEXT,
            lease_until     INTEGER,
            plan            TEXT,
            applied         TEXT,
            memory_ids      TEXT,
            error           TEXT,
            model           TEXT,
            created_at      INTEGER NOT NULL,
            updated_at      INTEGER NOT NULL
        ) STRICT;
        CREATE INDEX extraction_jobs_due ON extraction_jobs(status, next_attempt_at);
        """,
        // 13: reflections (issue 16): links between memories (a reflection derived_from its sources, a near-duplicate
        // duplicate_of the memory kept; never a column of memories) and the change-log position each scope was reflected
        // up to. scope_key joins the scope fields (see ReflectionScope.Key).
        """
        CREATE TABLE memory_links (
            lid        INTEGER PRIMARY KEY,
            tenant     TEXT    NOT NULL,
            memory_id  TEXT    NOT NULL,
            kind       TEXT    NOT NULL, -- derived_from, duplicate_of
            target_id  TEXT    NOT NULL,
            created_at INTEGER NOT NULL,
            UNIQUE (tenant, memory_id, kind, target_id)
        ) STRICT;
        CREATE INDEX memory_links_target ON memory_links(tenant, target_id, kind);
        CREATE INDEX memory_links_kind ON memory_links(tenant, kind, lid);

        CREATE TABLE reflection_watermarks (
            tenant    TEXT    NOT NULL,
            scope_key TEXT    NOT NULL,
            seq       INTEGER NOT NULL,
            run_at    INTEGER NOT NULL,
            PRIMARY KEY (tenant, scope_key)
        ) STRICT, WITHOUT ROWID;
        """,
        // 14: a key-value change is no longer a changelog row as well as a history row: its history row's id is its seq,
        // from the changelog's sequence (SqliteMemoryStore.Changes.cs). The sequence first moves above every seq and
        // history id there is; store_meta records the seq after which key-value changes are read from kv_history.
        """
        INSERT INTO sqlite_sequence(name, seq) SELECT 'changelog', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'changelog');
        UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT max(seq) FROM changelog), 0), coalesce((SELECT max(hid) FROM kv_history), 0))
            WHERE name = 'changelog';
        INSERT INTO store_meta(key, value) SELECT 'kv_changes_in_history_after', CAST(seq AS TEXT) FROM sqlite_sequence WHERE name = 'changelog';
        """,
        // 15: graph entity names in NFC, merging entities whose names become equal. SQLite has no Unicode normalization,
        // so the work is code (CodeSteps), run after this script in the same transaction.
        """
        -- see SqliteGraphNameMigration
        """,
        // 16: graph entity names without invisible characters (GraphValidator.NormalizeName folds a byte order mark or
        // zero-width space away, as NFC folds a decomposed accent): the same code again, merging "Al\u200Bice" into "Alice".
        """
        -- see SqliteGraphNameMigration
        """,
        // 17: what 16 left with invisible characters: entity and relation types folded as GraphValidator.Type folds them,
        // memory_entities re-keyed by EntityNames.Key, which folds them now (code, SqliteInvisibleFoldMigration).
        """
        -- see SqliteInvisibleFoldMigration
        """,
        // 18: memory tags without invisible characters: writes fold them (MemoryValidator.FoldTag) and filters compare the
        // folded tag, so a tag stored before as "urgent\u200B" would be found by none; memories.tags rewritten as a write
        // would store it, memory_tags re-keyed (code, SqliteInvisibleFoldMigration.FoldTags).
        """
        -- see SqliteInvisibleFoldMigration.FoldTags
        """,
    ];

    /// <summary>Work a migration does in code, after its script, keyed by the version it takes the schema to.</summary>
    private static readonly Dictionary<int, Action<SqliteConnection, long>> CodeSteps = new()
    {
        [GraphNamesInNfc] = SqliteGraphNameMigration.Run,
        [GraphNamesWithoutInvisible] = SqliteGraphNameMigration.Run,
        [TypesAndEntityKeysWithoutInvisible] = SqliteInvisibleFoldMigration.Run,
        [TagsWithoutInvisible] = SqliteInvisibleFoldMigration.FoldTags,
    };

    /// <summary>The version whose migration brings graph entity names to NFC.</summary>
    internal const int GraphNamesInNfc = 15;

    /// <summary>The version whose migration folds invisible characters out of graph entity names (the same code as <see cref="GraphNamesInNfc"/>'s).</summary>
    internal const int GraphNamesWithoutInvisible = 16;

    /// <summary>The version whose migration folds invisible characters out of graph types and memory entity keys.</summary>
    internal const int TypesAndEntityKeysWithoutInvisible = 17;

    /// <summary>The version whose migration folds invisible characters out of stored memory tags.</summary>
    internal const int TagsWithoutInvisible = 18;

    public static int LatestVersion => Migrations.Length;

    /// <param name="upTo">Stop at this version instead of the latest (tests build databases of earlier versions).</param>
    public static void Migrate(SqliteConnection connection, long nowMs, int? upTo = null)
    {
        var target = upTo ?? LatestVersion;
        connection.Execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)");
        // Migrations that rebuild a table drop it, and with foreign keys on that DROP would cascade
        // into the child tables: SQLite's ALTER procedure turns them off outside the transaction
        // (the pragma does nothing inside one) and checks them before committing.
        connection.Execute("PRAGMA foreign_keys=OFF");
        try
        {
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
                    CodeSteps.GetValueOrDefault(version + 1)?.Invoke(connection, nowMs);
                    connection.ExecuteNonQuery("INSERT INTO schema_version(version, applied_at) VALUES (?1, ?2)", version + 1, nowMs);
                }
                EnsureSupersededBy(connection);
                if (current < target)
                {
                    ThrowOnForeignKeyViolation(connection);
                }
                connection.Execute("COMMIT");
            }
            catch
            {
                connection.Execute("ROLLBACK");
                throw;
            }
        }
        finally
        {
            connection.Execute("PRAGMA foreign_keys=ON");
        }
    }

    /// <summary>
    /// Adds <c>memories.superseded_by</c> (extraction, issue 16) when the table lacks it: after the migrations of any
    /// version, so a table rebuilt by an earlier migration (the STRICT one copies named columns) gets it back too.
    /// </summary>
    private static void EnsureSupersededBy(SqliteConnection connection)
    {
        if (connection.ScalarInt64("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'memories'") == 0)
        {
            return;
        }
        if (connection.ScalarInt64("SELECT count(*) FROM pragma_table_info('memories') WHERE name = 'superseded_by'") == 0)
        {
            connection.Execute("ALTER TABLE memories ADD COLUMN superseded_by TEXT");
        }
    }

    private static void ThrowOnForeignKeyViolation(SqliteConnection connection)
    {
        using var check = connection.Prepare("PRAGMA foreign_key_check");
        if (check.Step())
        {
            throw new StoreException(
                $"the database '{connection.Path}' has a row in {check.GetText(0)} whose parent in {check.GetText(2)} is missing; " +
                "the migration was rolled back and the file left as it was.");
        }
    }

    public static int CurrentVersion(SqliteConnection connection) =>
        (int)(connection.ScalarInt64("SELECT MAX(version) FROM schema_version") ?? 0);
}
