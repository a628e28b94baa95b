-- The audit log: who changed what in a guild, and why. Written in the same transaction as the
-- change it records; read newest first, filtered by who acted and by action type.
CREATE TABLE audit_log_entries (
    id          BIGINT PRIMARY KEY,
    guild_id    BIGINT NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    -- Who acted; the entry stays when their account goes.
    user_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    -- What was acted on (a channel, role, user, emoji …); not a foreign key, it may be gone.
    target_id   BIGINT,
    action_type INTEGER NOT NULL,
    -- [{key, old_value, new_value}] as Discord shapes them.
    changes     JSONB NOT NULL DEFAULT '[]',
    -- Extra information for some actions (channel_id, count, message_id …).
    options     JSONB,
    reason      TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_entries_guild ON audit_log_entries (guild_id, id DESC);
CREATE INDEX audit_log_entries_guild_user ON audit_log_entries (guild_id, user_id, id DESC);
CREATE INDEX audit_log_entries_guild_action ON audit_log_entries (guild_id, action_type, id DESC);
