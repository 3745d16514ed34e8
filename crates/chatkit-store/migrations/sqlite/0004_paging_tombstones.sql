-- Where deleted threads and items were, so that a paging cursor (`after`) naming one continues from its
-- position instead of ending the listing. Items of a deleted thread leave none: listing them is a 404.
CREATE TABLE deleted_threads (
    id         TEXT    PRIMARY KEY,
    owner_id   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    seq        INTEGER NOT NULL
);

CREATE TABLE deleted_items (
    thread_id  TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (thread_id, id)
);

CREATE TRIGGER items_leave_tombstones AFTER DELETE ON items
WHEN EXISTS (SELECT 1 FROM threads t WHERE t.id = old.thread_id)
BEGIN
    INSERT OR REPLACE INTO deleted_items (thread_id, id, created_at, seq)
    VALUES (old.thread_id, old.id, old.created_at, old.seq);
END;

CREATE TRIGGER threads_leave_tombstones AFTER DELETE ON threads
BEGIN
    INSERT OR REPLACE INTO deleted_threads (id, owner_id, created_at, seq)
    VALUES (old.id, old.owner_id, old.created_at, old.seq);
    DELETE FROM deleted_items WHERE thread_id = old.id;
END;
