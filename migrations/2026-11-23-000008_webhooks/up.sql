-- Webhooks: a name, an avatar and a secret token that post into one guild channel without a
-- login. They go with their channel or guild.
CREATE TABLE webhooks (
    id             BIGINT PRIMARY KEY,
    -- 1 incoming, 3 application.
    type           INTEGER NOT NULL,
    guild_id       BIGINT NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    channel_id     BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    -- Who made it; the webhook stays when their account goes.
    user_id        BIGINT REFERENCES users (id) ON DELETE SET NULL,
    name           TEXT NOT NULL,
    avatar         TEXT,
    token          TEXT NOT NULL,
    application_id BIGINT REFERENCES applications (id) ON DELETE CASCADE,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX webhooks_channel ON webhooks (channel_id);
CREATE INDEX webhooks_guild ON webhooks (guild_id);

-- A webhook's message has no user for an author: it names the webhook, and keeps the name and
-- avatar it was sent with (they outlive later renames and the webhook itself, as on Discord).
ALTER TABLE messages
    ALTER COLUMN author_id DROP NOT NULL,
    ADD COLUMN webhook_id BIGINT,
    ADD COLUMN webhook_name TEXT,
    ADD COLUMN webhook_avatar TEXT,
    ADD CONSTRAINT messages_author_or_webhook
        CHECK (author_id IS NOT NULL OR (webhook_id IS NOT NULL AND webhook_name IS NOT NULL));

CREATE INDEX messages_webhook ON messages (webhook_id) WHERE webhook_id IS NOT NULL;
