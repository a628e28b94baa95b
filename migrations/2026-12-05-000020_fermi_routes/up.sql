-- What Fermi calls besides the classic API: settings protos, a guild's welcome screen,
-- widget settings and template.

-- `/users/@me/settings-proto/{1,2}`: Discord's opaque protobuf (base64, kept as sent), and
-- Spacebar's JSON variant of the same settings (`…/json`), kept apart: the server has no
-- schema to translate one into the other.
CREATE TABLE user_settings_protos (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind SMALLINT NOT NULL,
    proto TEXT NOT NULL DEFAULT '',
    json JSONB NOT NULL DEFAULT '{}',
    PRIMARY KEY (user_id, kind)
);

CREATE TABLE guild_welcome_screens (
    guild_id BIGINT PRIMARY KEY REFERENCES guilds (id) ON DELETE CASCADE,
    enabled BOOLEAN NOT NULL DEFAULT false,
    description TEXT,
    -- [{channel_id, description, emoji_id, emoji_name}], checked before it is stored.
    welcome_channels JSONB NOT NULL DEFAULT '[]'
);

CREATE TABLE guild_widgets (
    guild_id BIGINT PRIMARY KEY REFERENCES guilds (id) ON DELETE CASCADE,
    enabled BOOLEAN NOT NULL DEFAULT false,
    channel_id BIGINT REFERENCES channels (id) ON DELETE SET NULL
);

-- One template per guild, as on Discord; `source` is the serialised guild it was made from.
CREATE TABLE guild_templates (
    code TEXT PRIMARY KEY,
    guild_id BIGINT NOT NULL UNIQUE REFERENCES guilds (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    usage_count INTEGER NOT NULL DEFAULT 0,
    creator_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    source JSONB NOT NULL
);
