-- The instance's own administration: configuration changed at run time, registration tokens,
-- and instance-wide bans.

-- Configuration keys set through the admin API ("section.key" -> JSON value); laid over the
-- file and environment at every start.
CREATE TABLE instance_config (
    key        TEXT PRIMARY KEY,
    value      JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One-time tokens that let someone register while registration is closed.
CREATE TABLE registration_tokens (
    token      TEXT PRIMARY KEY,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ
);

-- Banned from the whole instance: an account, or an address.
CREATE TABLE instance_bans (
    id         BIGINT PRIMARY KEY,
    user_id    BIGINT REFERENCES users (id) ON DELETE CASCADE,
    ip         TEXT,
    reason     TEXT,
    created_by BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((user_id IS NULL) <> (ip IS NULL))
);
CREATE UNIQUE INDEX instance_bans_user ON instance_bans (user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX instance_bans_ip ON instance_bans (ip) WHERE ip IS NOT NULL;
