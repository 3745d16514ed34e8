-- Per-owner storage quotas sum the sizes of one owner's attachment bytes.
CREATE INDEX attachment_data_owner ON attachment_data (owner_id);
