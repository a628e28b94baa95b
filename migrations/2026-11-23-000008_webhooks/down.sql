DELETE FROM messages WHERE author_id IS NULL;
ALTER TABLE messages
    DROP CONSTRAINT messages_author_or_webhook,
    DROP COLUMN webhook_avatar,
    DROP COLUMN webhook_name,
    DROP COLUMN webhook_id,
    ALTER COLUMN author_id SET NOT NULL;
DROP TABLE webhooks;
