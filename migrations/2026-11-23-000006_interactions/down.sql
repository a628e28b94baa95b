ALTER TABLE messages DROP COLUMN interaction_metadata;
ALTER TABLE messages DROP COLUMN interaction_id;
DROP TABLE interactions;
