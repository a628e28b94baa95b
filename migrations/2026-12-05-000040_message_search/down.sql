DROP STATISTICS messages_ephemeral;
DROP INDEX messages_guild_id_id;
DROP INDEX messages_search_vector;
ALTER TABLE messages DROP COLUMN search_vector;
DROP FUNCTION message_search_vector(TEXT, BIGINT, BIGINT[], JSONB, JSONB, BOOLEAN);
