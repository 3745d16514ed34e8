-- Whether a usage row counts its turn: a turn that failed over stores its failed call to the primary
-- provider apart from the fallback's answer, and only the answer counts the turn.
ALTER TABLE turn_usage ADD COLUMN turns BIGINT NOT NULL DEFAULT 1;
