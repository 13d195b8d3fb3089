using Npgsql;

namespace Engram.Core.Storage.Postgres;

/// <summary>
/// Schema migrations of the PostgreSQL store, applied in order at start, each in the one transaction
/// that also records it. A transaction-level advisory lock makes instances that start together
/// migrate one after the other; a database newer than this binary is refused, never touched.
/// Times are unix milliseconds (bigint) as in the SQLite store; keys compare by byte (COLLATE "C").
/// </summary>
internal static class PostgresSchema
{
    /// <summary>The advisory lock key migrations hold ('engr' 'migr').</summary>
    private const long MigrationLock = 0x656e6772_6d696772;

    private static readonly string[] Migrations =
    [
        """
        CREATE TABLE store_meta (key text PRIMARY KEY, value text NOT NULL);
        INSERT INTO store_meta(key, value) VALUES ('store_id', md5(random()::text || clock_timestamp()::text)), ('api_keys_generation', '0');

        -- The change log. seq is given from log_head's single row, locked by the writing transaction
        -- until it commits: seqs are contiguous and in commit order (PostgresMemoryStore.AppendChangeAsync).
        CREATE TABLE log_head (one boolean PRIMARY KEY DEFAULT true CHECK (one), seq bigint NOT NULL);
        INSERT INTO log_head(seq) VALUES (0);
        CREATE TABLE changelog (
            seq       bigint PRIMARY KEY,
            tenant    text   NOT NULL,
            entity    text   NOT NULL,
            entity_id text   NOT NULL,
            op        text   NOT NULL,
            at        bigint NOT NULL
        );
        CREATE INDEX changelog_entity ON changelog(entity, seq);

        CREATE TABLE memories (
            rid              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id               text COLLATE "C" NOT NULL UNIQUE,
            tenant           text   NOT NULL,
            content          text   NOT NULL,
            content_hash     text   NOT NULL,
            type             text   NOT NULL,
            tier             text   NOT NULL,
            importance       double precision NOT NULL,
            valence          double precision,
            tags             text   NOT NULL, -- JSON array, the source of truth; memory_tags indexes it
            metadata         text   NOT NULL, -- JSON object as given (what reads return)
            metadata_jsonb   jsonb  GENERATED ALWAYS AS (metadata::jsonb) STORED, -- for the metadata filters
            user_id          text,
            agent_id         text,
            session_id       text,
            namespace        text,
            source           text,
            created_at       bigint NOT NULL,
            updated_at       bigint NOT NULL,
            last_accessed_at bigint,
            access_count     bigint NOT NULL DEFAULT 0,
            expires_at       bigint,
            valid_from       bigint,
            valid_to         bigint,
            version          bigint NOT NULL,
            seq              bigint NOT NULL,
            entities         text   NOT NULL DEFAULT '[]'
        );
        CREATE INDEX memories_tenant_id ON memories(tenant, id);
        CREATE INDEX memories_tenant_hash ON memories(tenant, content_hash);
        CREATE INDEX memories_tenant_user ON memories(tenant, user_id, id);
        CREATE INDEX memories_expires ON memories(expires_at) WHERE expires_at IS NOT NULL;

        CREATE TABLE memory_tags (
            rid bigint NOT NULL REFERENCES memories(rid) ON DELETE CASCADE,
            tag text   NOT NULL,
            PRIMARY KEY (tag, rid)
        );
        CREATE INDEX memory_tags_rid ON memory_tags(rid);

        CREATE TABLE memory_entities (
            rid      bigint NOT NULL REFERENCES memories(rid) ON DELETE CASCADE,
            name_key text   NOT NULL,
            PRIMARY KEY (name_key, rid)
        );
        CREATE INDEX memory_entities_rid ON memory_entities(rid);

        CREATE TABLE memory_history (
            hid       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant    text   NOT NULL,
            memory_id text   NOT NULL,
            seq       bigint NOT NULL,
            event     text   NOT NULL,
            actor     text   NOT NULL,
            at        bigint NOT NULL,
            version   bigint NOT NULL,
            changes   text   NOT NULL
        );
        CREATE INDEX memory_history_memory ON memory_history(tenant, memory_id, hid);

        -- Vectors with the memory version they were made of (n x dims little-endian float32), so no
        -- instance, restart or rebuild embeds the corpus again.
        CREATE TABLE memory_vectors (
            tenant    text   NOT NULL,
            memory_id text   NOT NULL,
            version   bigint NOT NULL,
            model     text   NOT NULL,
            dims      int    NOT NULL,
            count     int    NOT NULL,
            vectors   bytea  NOT NULL,
            PRIMARY KEY (tenant, memory_id, model, version)
        );
        CREATE INDEX memory_vectors_model ON memory_vectors(model);

        CREATE TABLE graph_entities (
            eid         bigint GENERATED ALWAYS AS IDENTITY UNIQUE, -- creation order
            tenant      text   NOT NULL,
            name        text   NOT NULL,
            entity_type text   NOT NULL,
            created_at  bigint NOT NULL,
            updated_at  bigint NOT NULL,
            PRIMARY KEY (tenant, name)
        );
        CREATE TABLE graph_observations (
            oid         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant      text   NOT NULL,
            entity_name text   NOT NULL,
            content     text   NOT NULL,
            valid_from  bigint,
            valid_to    bigint,
            created_at  bigint NOT NULL,
            UNIQUE (tenant, entity_name, content),
            FOREIGN KEY (tenant, entity_name) REFERENCES graph_entities(tenant, name) ON DELETE CASCADE
        );
        CREATE TABLE graph_relations (
            rid           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant        text   NOT NULL,
            from_name     text   NOT NULL,
            to_name       text   NOT NULL,
            relation_type text   NOT NULL,
            weight        double precision,
            valid_from    bigint,
            valid_to      bigint,
            created_at    bigint NOT NULL,
            UNIQUE (tenant, from_name, to_name, relation_type),
            FOREIGN KEY (tenant, from_name) REFERENCES graph_entities(tenant, name) ON DELETE CASCADE,
            FOREIGN KEY (tenant, to_name) REFERENCES graph_entities(tenant, name) ON DELETE CASCADE
        );
        CREATE INDEX graph_relations_to ON graph_relations(tenant, to_name);
        CREATE TABLE graph_history (
            hid         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant      text   NOT NULL,
            seq         bigint NOT NULL,
            event       text   NOT NULL,
            actor       text   NOT NULL,
            at          bigint NOT NULL,
            entity_name text   NOT NULL,
            other_name  text,
            changes     text   NOT NULL
        );
        CREATE INDEX graph_history_entity ON graph_history(tenant, entity_name, hid);
        CREATE INDEX graph_history_other ON graph_history(tenant, other_name, hid) WHERE other_name IS NOT NULL;

        CREATE TABLE kv_entries (
            tenant     text COLLATE "C" NOT NULL,
            key        text COLLATE "C" NOT NULL,
            value      text   NOT NULL,
            expires_at bigint,
            version    bigint NOT NULL,
            seq        bigint NOT NULL,
            created_at bigint NOT NULL,
            updated_at bigint NOT NULL,
            last_hid   bigint,
            PRIMARY KEY (tenant, key)
        );
        CREATE INDEX kv_entries_expires ON kv_entries(expires_at) WHERE expires_at IS NOT NULL;
        CREATE TABLE kv_history (
            hid        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            tenant     text   NOT NULL,
            key        text   NOT NULL,
            seq        bigint NOT NULL,
            event      text   NOT NULL,
            actor      text   NOT NULL,
            at         bigint NOT NULL,
            version    bigint NOT NULL,
            value      text,
            expires_at bigint,
            prev_hid   bigint
        );
        CREATE TABLE kv_deleted (
            tenant   text COLLATE "C" NOT NULL,
            key      text COLLATE "C" NOT NULL,
            last_hid bigint NOT NULL,
            PRIMARY KEY (tenant, key)
        );

        CREATE TABLE api_keys (
            id           text   PRIMARY KEY,
            prefix       text   NOT NULL,
            hash         bytea  NOT NULL UNIQUE,
            tenant       text   NOT NULL,
            role         text   NOT NULL,
            user_id      text,
            agent_id     text,
            name         text,
            created_at   bigint NOT NULL,
            expires_at   bigint,
            revoked_at   bigint,
            last_used_at bigint
        );
        CREATE INDEX api_keys_prefix ON api_keys(prefix);
        CREATE INDEX api_keys_tenant ON api_keys(tenant, created_at);

        CREATE TABLE audit_log (
            seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at      bigint NOT NULL,
            tenant  text   NOT NULL,
            actor   text   NOT NULL,
            action  text   NOT NULL,
            target  text,
            outcome text   NOT NULL,
            remote  text,
            detail  text
        );
        CREATE INDEX audit_log_tenant ON audit_log(tenant, seq);

        -- Counts kept by the writer, in the transaction of every change (triggers), as on SQLite.
        CREATE TABLE row_counts (
            tenant text   NOT NULL,
            kind   text   NOT NULL,
            tier   text   NOT NULL,
            type   text   NOT NULL,
            n      bigint NOT NULL,
            PRIMARY KEY (tenant, kind, tier, type)
        );
        CREATE FUNCTION row_counts_add(p_tenant text, p_kind text, p_tier text, p_type text, p_n bigint) RETURNS void LANGUAGE sql AS $$
            INSERT INTO row_counts(tenant, kind, tier, type, n) VALUES (p_tenant, p_kind, p_tier, p_type, p_n)
            ON CONFLICT (tenant, kind, tier, type) DO UPDATE SET n = row_counts.n + excluded.n
        $$;
        CREATE FUNCTION memories_count() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN PERFORM row_counts_add(OLD.tenant, 'memory', OLD.tier, OLD.type, -1); END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN PERFORM row_counts_add(NEW.tenant, 'memory', NEW.tier, NEW.type, 1); END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER memories_count AFTER INSERT OR DELETE ON memories FOR EACH ROW EXECUTE FUNCTION memories_count();
        CREATE TRIGGER memories_count_update AFTER UPDATE OF tenant, tier, type ON memories FOR EACH ROW
            WHEN (OLD.tenant IS DISTINCT FROM NEW.tenant OR OLD.tier IS DISTINCT FROM NEW.tier OR OLD.type IS DISTINCT FROM NEW.type)
            EXECUTE FUNCTION memories_count();
        CREATE FUNCTION simple_count() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN PERFORM row_counts_add(OLD.tenant, TG_ARGV[0], '', '', -1);
            ELSE PERFORM row_counts_add(NEW.tenant, TG_ARGV[0], '', '', 1); END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER kv_entries_count AFTER INSERT OR DELETE ON kv_entries FOR EACH ROW EXECUTE FUNCTION simple_count('kv');
        CREATE TRIGGER graph_entities_count AFTER INSERT OR DELETE ON graph_entities FOR EACH ROW EXECUTE FUNCTION simple_count('entity');
        CREATE TRIGGER graph_relations_count AFTER INSERT OR DELETE ON graph_relations FOR EACH ROW EXECUTE FUNCTION simple_count('relation');
        """,
        // Extraction (issue 16): a superseded memory names its successor; conversations are kept as they came
        // (with their own history), and each is extracted by a durable job (leased, retried, resumable).
        """
        ALTER TABLE memories ADD COLUMN superseded_by text;
        CREATE TABLE conversations (
            id         text   PRIMARY KEY,
            tenant     text   NOT NULL,
            body       text   NOT NULL,
            created_at bigint NOT NULL
        );
        CREATE TABLE conversation_history (
            hid             bigserial PRIMARY KEY,
            tenant          text   NOT NULL,
            conversation_id text   NOT NULL,
            event           text   NOT NULL,
            actor           text   NOT NULL,
            at              bigint NOT NULL,
            detail          text
        );
        CREATE INDEX conversation_history_conversation ON conversation_history(conversation_id, hid);
        CREATE TABLE extraction_jobs (
            id              text   PRIMARY KEY,
            tenant          text   NOT NULL,
            conversation_id text   NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            actor           text   NOT NULL,
            status          text   NOT NULL,
            attempts        bigint NOT NULL DEFAULT 0,
            next_attempt_at bigint NOT NULL,
            lease_owner     text,
            lease_until     bigint,
            plan            text,
            applied         text,
            memory_ids      text,
            error           text,
            model           text,
            created_at      bigint NOT NULL,
            updated_at      bigint NOT NULL
        );
        CREATE INDEX extraction_jobs_due ON extraction_jobs(status, next_attempt_at);
        """,
        // Reflections (issue 16): links between memories and each scope's reflection watermark (as SQLite's migration 12).
        """
        CREATE TABLE memory_links (
            lid        bigserial PRIMARY KEY,
            tenant     text COLLATE "C" NOT NULL,
            memory_id  text COLLATE "C" NOT NULL,
            kind       text COLLATE "C" NOT NULL,
            target_id  text COLLATE "C" NOT NULL,
            created_at bigint NOT NULL,
            UNIQUE (tenant, memory_id, kind, target_id)
        );
        CREATE INDEX memory_links_target ON memory_links(tenant, target_id, kind);
        CREATE INDEX memory_links_kind ON memory_links(tenant, kind, lid);

        CREATE TABLE reflection_watermarks (
            tenant    text COLLATE "C" NOT NULL,
            scope_key text COLLATE "C" NOT NULL,
            seq       bigint NOT NULL,
            run_at    bigint NOT NULL,
            PRIMARY KEY (tenant, scope_key)
        );
        """,
        // Kept counts as appended deltas: the count triggers updated one row_counts row per inserted or deleted row, and
        // PostgreSQL reaches a row updated many times in one transaction through a chain of its versions, so a
        // transaction of many new or deleted keys (an MSET, a pipeline, a big DEL) slowed with each one: 10,000 new keys
        // in one transaction took 1.9 s of statements, 0.57 s with deltas (session 33). Readers add the deltas to
        // row_counts; FoldRowCountsAsync moves them there now and then.
        """
        CREATE TABLE row_count_deltas (
            tenant text   NOT NULL,
            kind   text   NOT NULL,
            tier   text   NOT NULL,
            type   text   NOT NULL,
            n      bigint NOT NULL
        );
        CREATE OR REPLACE FUNCTION row_counts_add(p_tenant text, p_kind text, p_tier text, p_type text, p_n bigint) RETURNS void LANGUAGE sql AS $$
            INSERT INTO row_count_deltas(tenant, kind, tier, type, n) VALUES (p_tenant, p_kind, p_tier, p_type, p_n)
        $$;
        """,
        // An observation may hold 4,096 bytes (GraphValidator), more than a B-tree index entry takes (2,704 bytes): one of
        // ~2.7 KB failed its insert. An entity's observations stay unique on a hash of their text (a probe, session 43).
        """
        ALTER TABLE graph_observations DROP CONSTRAINT graph_observations_tenant_entity_name_content_key;
        CREATE UNIQUE INDEX graph_observations_content_key ON graph_observations (tenant, entity_name, md5(content));
        """,
        // Deleted keys counted once per statement (a transition table) instead of once per row: a set-based delete of
        // 1,000 keys spent 41 ms of its 62 in the row trigger, 0.6 ms in this one (session 45). Inserts keep the row
        // trigger: a statement trigger would also run for every SET that updates a key (an upsert inserts nothing then).
        """
        DROP TRIGGER kv_entries_count ON kv_entries;
        CREATE TRIGGER kv_entries_count AFTER INSERT ON kv_entries FOR EACH ROW EXECUTE FUNCTION simple_count('kv');
        CREATE FUNCTION removed_count() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO row_count_deltas(tenant, kind, tier, type, n) SELECT tenant, TG_ARGV[0], '', '', -count(*) FROM removed GROUP BY tenant;
            RETURN NULL;
        END $$;
        CREATE TRIGGER kv_entries_count_removed AFTER DELETE ON kv_entries REFERENCING OLD TABLE AS removed
            FOR EACH STATEMENT EXECUTE FUNCTION removed_count('kv');
        """,
        // The row count triggers append their delta themselves: through row_counts_add, a SQL function that PERFORM runs as
        // a query of its own, PostgreSQL set up and planned its body again for every row (about 20 µs a row: 20-40 ms of a
        // 1,000-key set-based SET of new keys, which took 18-37 ms without the trigger); an INSERT in PL/pgSQL keeps its
        // plan (session 46).
        """
        CREATE OR REPLACE FUNCTION memories_count() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('DELETE', 'UPDATE') THEN
                INSERT INTO row_count_deltas(tenant, kind, tier, type, n) VALUES (OLD.tenant, 'memory', OLD.tier, OLD.type, -1);
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') THEN
                INSERT INTO row_count_deltas(tenant, kind, tier, type, n) VALUES (NEW.tenant, 'memory', NEW.tier, NEW.type, 1);
            END IF;
            RETURN NULL;
        END $$;
        CREATE OR REPLACE FUNCTION simple_count() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                INSERT INTO row_count_deltas(tenant, kind, tier, type, n) VALUES (OLD.tenant, TG_ARGV[0], '', '', -1);
            ELSE
                INSERT INTO row_count_deltas(tenant, kind, tier, type, n) VALUES (NEW.tenant, TG_ARGV[0], '', '', 1);
            END IF;
            RETURN NULL;
        END $$;
        """,
        // Graph entity names in NFC, merging entities whose names become equal: code (CodeSteps), run after this in the
        // same transaction.
        """
        -- see PostgresGraphNameMigration
        """,
        // A relation's triple was unique through a B-tree over (tenant, from_name, to_name, relation_type): up to ~3.5 KB
        // of key under a scoped key's partition (two 256-character scope values) with names and type of 3-byte characters,
        // past the 2,704 bytes a B-tree entry takes, so the insert failed (a 500; a probe, session 48). The triple stays
        // unique on hashes of its parts, as observations on a hash of their text; (tenant, from_name) gets the index the
        // constraint gave lookups by the from side. Written to run again (the tests set the schema back before version 8).
        """
        ALTER TABLE graph_relations DROP CONSTRAINT IF EXISTS graph_relations_tenant_from_name_to_name_relation_type_key;
        CREATE UNIQUE INDEX IF NOT EXISTS graph_relations_triple_key ON graph_relations (tenant, md5(from_name), md5(to_name), md5(relation_type));
        CREATE INDEX IF NOT EXISTS graph_relations_from ON graph_relations (tenant, from_name);
        """,
        // Graph entity names without invisible characters (GraphValidator.NormalizeName folds a byte order mark or
        // zero-width space away, as NFC folds a decomposed accent): the same code again (CodeSteps), merging
        // "Al\u200Bice" into "Alice".
        """
        -- see PostgresGraphNameMigration
        """,
        // What 10 left with invisible characters: entity and relation types folded as GraphValidator.Type folds them,
        // memory_entities re-keyed by EntityNames.Key, which folds them now (code, PostgresInvisibleFoldMigration).
        """
        -- see PostgresInvisibleFoldMigration
        """,
        // Memory tags without invisible characters: writes fold them (MemoryValidator.FoldTag) and filters compare the
        // folded tag, so a tag stored before as "urgent\u200B" would be found by none; memories.tags rewritten as a write
        // would store it, memory_tags re-keyed (code, PostgresInvisibleFoldMigration.FoldTags).
        """
        -- see PostgresInvisibleFoldMigration.FoldTags
        """,
    ];

    /// <summary>Work a migration does in code, after its script, keyed by the version it takes the schema to.</summary>
    private static readonly Dictionary<int, Action<NpgsqlConnection, long>> CodeSteps = new()
    {
        [GraphNamesInNfc] = PostgresGraphNameMigration.Run,
        [GraphNamesWithoutInvisible] = PostgresGraphNameMigration.Run,
        [TypesAndEntityKeysWithoutInvisible] = PostgresInvisibleFoldMigration.Run,
        [TagsWithoutInvisible] = PostgresInvisibleFoldMigration.FoldTags,
    };

    /// <summary>The version whose migration brings graph entity names to NFC.</summary>
    internal const int GraphNamesInNfc = 8;

    /// <summary>The version whose migration folds invisible characters out of graph entity names (the same code as <see cref="GraphNamesInNfc"/>'s).</summary>
    internal const int GraphNamesWithoutInvisible = 10;

    /// <summary>The version whose migration folds invisible characters out of graph types and memory entity keys.</summary>
    internal const int TypesAndEntityKeysWithoutInvisible = 11;

    /// <summary>The version whose migration folds invisible characters out of stored memory tags.</summary>
    internal const int TagsWithoutInvisible = 12;

    public static int LatestVersion => Migrations.Length;

    /// <summary>Engram's tables (what maintenance vacuums, analyzes and reindexes); a migration that adds one adds it here.</summary>
    public static readonly string[] Tables =
    [
        "store_meta", "log_head", "changelog", "memories", "memory_tags", "memory_entities", "memory_history", "memory_vectors",
        "graph_entities", "graph_observations", "graph_relations", "graph_history", "kv_entries", "kv_history", "kv_deleted",
        "api_keys", "audit_log", "row_counts", "schema_version", "conversations", "conversation_history", "extraction_jobs",
        "memory_links", "reflection_watermarks", "row_count_deltas",
    ];

    public static void Migrate(NpgsqlConnection connection, long nowMs)
    {
        using var transaction = connection.BeginTransaction();
        Execute(connection, $"SELECT pg_advisory_xact_lock({MigrationLock})");
        Execute(connection, "CREATE TABLE IF NOT EXISTS schema_version (version int PRIMARY KEY, applied_at bigint NOT NULL)");
        using var read = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM schema_version", connection);
        var current = (int)read.ExecuteScalar()!;
        if (current > LatestVersion)
        {
            throw new StoreException(
                $"the PostgreSQL database '{connection.Database}' has schema version {current}, newer than this engram understands " +
                $"(up to {LatestVersion}). Run a newer engram.");
        }
        for (var version = current; version < LatestVersion; version++)
        {
            Execute(connection, Migrations[version]);
            CodeSteps.GetValueOrDefault(version + 1)?.Invoke(connection, nowMs);
            using var record = new NpgsqlCommand("INSERT INTO schema_version(version, applied_at) VALUES ($1, $2)", connection);
            record.Value(version + 1).Int(nowMs);
            record.ExecuteNonQuery();
        }
        transaction.Commit();
    }

    private static void Execute(NpgsqlConnection connection, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection);
        command.ExecuteNonQuery();
    }
}
