-- ChatKit store schema (SQLite). JSON payloads are TEXT; timestamps are microseconds since the epoch.
-- `seq` is the rowid: a global insertion sequence that orders rows with equal `created_at`.
CREATE TABLE threads (
    seq        INTEGER PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    owner_id   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    data       TEXT    NOT NULL
);
CREATE INDEX threads_owner_position ON threads (owner_id, created_at, seq);

CREATE TABLE items (
    seq        INTEGER PRIMARY KEY,
    thread_id  TEXT    NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    id         TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    type       TEXT    NOT NULL,
    data       TEXT    NOT NULL,
    UNIQUE (thread_id, id)
);
CREATE INDEX items_thread_position ON items (thread_id, created_at, seq);

CREATE TABLE attachments (
    id       TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    data     TEXT NOT NULL
);

CREATE TABLE attachment_data (
    id       TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    bytes    BLOB NOT NULL
);

CREATE TABLE kv (
    namespace TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    value     TEXT    NOT NULL,
    PRIMARY KEY (namespace, key)
);
