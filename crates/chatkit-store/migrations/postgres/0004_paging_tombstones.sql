-- Where deleted threads and items were, so that a paging cursor (`after`) naming one continues from its
-- position instead of ending the listing. Items of a deleted thread leave none: listing them is a 404.
CREATE TABLE deleted_threads (
    id         TEXT   PRIMARY KEY,
    owner_id   TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    seq        BIGINT NOT NULL
);

CREATE TABLE deleted_items (
    thread_id  TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    seq        BIGINT NOT NULL,
    PRIMARY KEY (thread_id, id)
);

CREATE FUNCTION chatkit_item_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM threads t WHERE t.id = OLD.thread_id) THEN
        INSERT INTO deleted_items (thread_id, id, created_at, seq)
        VALUES (OLD.thread_id, OLD.id, OLD.created_at, OLD.seq)
        ON CONFLICT (thread_id, id) DO UPDATE SET created_at = excluded.created_at, seq = excluded.seq;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION chatkit_thread_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO deleted_threads (id, owner_id, created_at, seq)
    VALUES (OLD.id, OLD.owner_id, OLD.created_at, OLD.seq)
    ON CONFLICT (id) DO UPDATE SET owner_id = excluded.owner_id, created_at = excluded.created_at, seq = excluded.seq;
    DELETE FROM deleted_items WHERE thread_id = OLD.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER items_leave_tombstones AFTER DELETE ON items
    FOR EACH ROW EXECUTE FUNCTION chatkit_item_tombstone();
CREATE TRIGGER threads_leave_tombstones AFTER DELETE ON threads
    FOR EACH ROW EXECUTE FUNCTION chatkit_thread_tombstone();
