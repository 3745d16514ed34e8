-- When each tombstone was left (microseconds since the epoch, by the database's clock), so that the
-- ones older than the retention can be pruned. Tombstones from before this migration count from now.
ALTER TABLE deleted_threads ADD COLUMN deleted_at BIGINT NOT NULL
    DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT;
ALTER TABLE deleted_items ADD COLUMN deleted_at BIGINT NOT NULL
    DEFAULT (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT;
CREATE INDEX deleted_threads_by_age ON deleted_threads (deleted_at);
CREATE INDEX deleted_items_by_age ON deleted_items (deleted_at);

-- A row deleted again (an id reused after its deletion) restarts its tombstone's age.
CREATE OR REPLACE FUNCTION chatkit_item_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM threads t WHERE t.id = OLD.thread_id) THEN
        INSERT INTO deleted_items (thread_id, id, created_at, seq)
        VALUES (OLD.thread_id, OLD.id, OLD.created_at, OLD.seq)
        ON CONFLICT (thread_id, id) DO UPDATE SET created_at = excluded.created_at, seq = excluded.seq,
            deleted_at = excluded.deleted_at;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION chatkit_thread_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deleted_threads (id, owner_id, created_at, seq)
    VALUES (OLD.id, OLD.owner_id, OLD.created_at, OLD.seq)
    ON CONFLICT (id) DO UPDATE SET owner_id = excluded.owner_id, created_at = excluded.created_at,
        seq = excluded.seq, deleted_at = excluded.deleted_at;
    DELETE FROM deleted_items WHERE thread_id = OLD.id;
    RETURN NULL;
END
$$;
