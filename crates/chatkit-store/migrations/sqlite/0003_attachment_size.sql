-- The size `attachments.create` declared, which the upload must match (NULL for attachments made before
-- it was recorded: their uploads are not checked).
ALTER TABLE attachments ADD COLUMN declared_size INTEGER;
