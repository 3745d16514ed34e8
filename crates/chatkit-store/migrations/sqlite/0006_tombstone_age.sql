-- When each tombstone was left (microseconds since the epoch), so that the ones older than the
-- retention can be pruned. Tombstones from before this migration count from now.
ALTER TABLE deleted_threads ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deleted_items ADD COLUMN deleted_at INTEGER NOT NULL DEFAULT 0;
UPDATE deleted_threads SET deleted_at = CAST(unixepoch('subsec') * 1000000 AS INTEGER);
UPDATE deleted_items SET deleted_at = CAST(unixepoch('subsec') * 1000000 AS INTEGER);
CREATE INDEX deleted_threads_by_age ON deleted_threads (deleted_at);
CREATE INDEX deleted_items_by_age ON deleted_items (deleted_at);

DROP TRIGGER items_leave_tombstones;
DROP TRIGGER threads_leave_tombstones;

CREATE TRIGGER items_leave_tombstones AFTER DELETE ON items
WHEN EXISTS (SELECT 1 FROM threads t WHERE t.id = old.thread_id)
BEGIN
    INSERT OR REPLACE INTO deleted_items (thread_id, id, created_at, seq, deleted_at)
    VALUES (old.thread_id, old.id, old.created_at, old.seq, CAST(unixepoch('subsec') * 1000000 AS INTEGER));
END;

CREATE TRIGGER threads_leave_tombstones AFTER DELETE ON threads
BEGIN
    INSERT OR REPLACE INTO deleted_threads (id, owner_id, created_at, seq, deleted_at)
    VALUES (old.id, old.owner_id, old.created_at, old.seq, CAST(unixepoch('subsec') * 1000000 AS INTEGER));
    DELETE FROM deleted_items WHERE thread_id = old.id;
END;
