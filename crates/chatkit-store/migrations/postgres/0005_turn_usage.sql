-- Model usage per turn (tokens by provider and model), summed per owner and per thread. No foreign key
-- to `threads`: the usage of a deleted thread still counts for its owner.
CREATE TABLE turn_usage (
    seq              BIGSERIAL PRIMARY KEY,
    owner_id         TEXT    NOT NULL,
    thread_id        TEXT    NOT NULL,
    provider         TEXT    NOT NULL,
    model            TEXT    NOT NULL,
    model_calls      BIGINT  NOT NULL,
    input_tokens     BIGINT  NOT NULL,
    output_tokens    BIGINT  NOT NULL,
    cached_tokens    BIGINT  NOT NULL,
    reasoning_tokens BIGINT  NOT NULL,
    created_at       BIGINT  NOT NULL
);
CREATE INDEX turn_usage_owner_thread ON turn_usage (owner_id, thread_id);
