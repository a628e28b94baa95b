-- Interactions: someone invoked an application's command (or pressed a component); the
-- application answers through the interaction's token for 15 minutes. Kept in the database, so
-- an answer still lands after a server restart.
CREATE TABLE interactions (
    id                  BIGINT PRIMARY KEY,
    application_id      BIGINT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    -- 2 application command, 3 message component.
    type                INTEGER NOT NULL,
    token               TEXT NOT NULL UNIQUE,
    user_id             BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    guild_id            BIGINT REFERENCES guilds (id) ON DELETE CASCADE,
    channel_id          BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    -- The command (or component) as INTERACTION_CREATE carried it.
    data                JSONB NOT NULL,
    -- For components: the message the component is on.
    message_id          BIGINT,
    nonce               TEXT,
    -- The callback type once the application answered (1, 4, 5, 6, 7); null before.
    response_type       INTEGER,
    -- The message the answer made (types 4 and 5).
    original_message_id BIGINT,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Messages made by an interaction's answer or follow-ups.
ALTER TABLE messages ADD COLUMN interaction_id BIGINT REFERENCES interactions (id) ON DELETE SET NULL;
ALTER TABLE messages ADD COLUMN interaction_metadata JSONB;
