-- Guilds, channels, roles, members, messages and everything around them.

CREATE TABLE guilds (
    id                            BIGINT PRIMARY KEY,
    name                          TEXT NOT NULL,
    icon                          TEXT,
    banner                        TEXT,
    splash                        TEXT,
    description                   TEXT,
    owner_id                      BIGINT NOT NULL REFERENCES users (id),
    afk_channel_id                BIGINT,
    afk_timeout                   INTEGER NOT NULL DEFAULT 300,
    system_channel_id             BIGINT,
    rules_channel_id              BIGINT,
    verification_level            INTEGER NOT NULL DEFAULT 0,
    default_message_notifications INTEGER NOT NULL DEFAULT 0,
    explicit_content_filter       INTEGER NOT NULL DEFAULT 0,
    mfa_level                     INTEGER NOT NULL DEFAULT 0,
    nsfw_level                    INTEGER NOT NULL DEFAULT 0,
    premium_tier                  INTEGER NOT NULL DEFAULT 0,
    preferred_locale              TEXT NOT NULL DEFAULT 'en-US',
    features                      TEXT[] NOT NULL DEFAULT '{}',
    created_at                    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The @everyone role shares its guild's id.
CREATE TABLE roles (
    id            BIGINT PRIMARY KEY,
    guild_id      BIGINT NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    color         INTEGER NOT NULL DEFAULT 0,
    hoist         BOOLEAN NOT NULL DEFAULT FALSE,
    position      INTEGER NOT NULL DEFAULT 0,
    permissions   BIGINT NOT NULL DEFAULT 0,
    managed       BOOLEAN NOT NULL DEFAULT FALSE,
    mentionable   BOOLEAN NOT NULL DEFAULT FALSE,
    icon          TEXT,
    unicode_emoji TEXT,
    -- The bot a managed role belongs to.
    bot_id        BIGINT
);
CREATE INDEX roles_guild_id ON roles (guild_id);

-- Guild channels (guild_id set) and DMs / group DMs (guild_id null, recipients below).
CREATE TABLE channels (
    id                  BIGINT PRIMARY KEY,
    type                INTEGER NOT NULL,
    guild_id            BIGINT REFERENCES guilds (id) ON DELETE CASCADE,
    name                TEXT,
    topic               TEXT,
    position            INTEGER NOT NULL DEFAULT 0,
    parent_id           BIGINT,
    nsfw                BOOLEAN NOT NULL DEFAULT FALSE,
    bitrate             INTEGER,
    user_limit          INTEGER,
    rate_limit_per_user INTEGER NOT NULL DEFAULT 0,
    owner_id            BIGINT,
    icon                TEXT,
    last_message_id     BIGINT,
    last_pin_timestamp  TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX channels_guild_id ON channels (guild_id);

-- Permission overwrites: kind 0 = role, 1 = member.
CREATE TABLE permission_overwrites (
    channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    target_id  BIGINT NOT NULL,
    kind       INTEGER NOT NULL,
    allow      BIGINT NOT NULL DEFAULT 0,
    deny       BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, target_id)
);

CREATE TABLE channel_recipients (
    channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (channel_id, user_id)
);
CREATE INDEX channel_recipients_user_id ON channel_recipients (user_id);

CREATE TABLE members (
    guild_id                     BIGINT NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    user_id                      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    nick                         TEXT,
    avatar                       TEXT,
    roles                        BIGINT[] NOT NULL DEFAULT '{}',
    joined_at                    TIMESTAMPTZ NOT NULL DEFAULT now(),
    premium_since                TIMESTAMPTZ,
    deaf                         BOOLEAN NOT NULL DEFAULT FALSE,
    mute                         BOOLEAN NOT NULL DEFAULT FALSE,
    pending                      BOOLEAN NOT NULL DEFAULT FALSE,
    flags                        INTEGER NOT NULL DEFAULT 0,
    communication_disabled_until TIMESTAMPTZ,
    PRIMARY KEY (guild_id, user_id)
);
CREATE INDEX members_user_id ON members (user_id);

CREATE TABLE bans (
    guild_id   BIGINT NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reason     TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (guild_id, user_id)
);

CREATE TABLE invites (
    code       TEXT PRIMARY KEY,
    guild_id   BIGINT NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    inviter_id BIGINT REFERENCES users (id) ON DELETE SET NULL,
    max_age    INTEGER NOT NULL DEFAULT 86400,
    max_uses   INTEGER NOT NULL DEFAULT 0,
    uses       INTEGER NOT NULL DEFAULT 0,
    temporary  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ
);
CREATE INDEX invites_guild_id ON invites (guild_id);

CREATE TABLE messages (
    id               BIGINT PRIMARY KEY,
    channel_id       BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    guild_id         BIGINT,
    author_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    content          TEXT NOT NULL DEFAULT '',
    type             INTEGER NOT NULL DEFAULT 0,
    tts              BOOLEAN NOT NULL DEFAULT FALSE,
    mention_everyone BOOLEAN NOT NULL DEFAULT FALSE,
    mentions         BIGINT[] NOT NULL DEFAULT '{}',
    mention_roles    BIGINT[] NOT NULL DEFAULT '{}',
    embeds           JSONB NOT NULL DEFAULT '[]',
    attachments      JSONB NOT NULL DEFAULT '[]',
    components       JSONB NOT NULL DEFAULT '[]',
    -- A reply: {message_id, channel_id, guild_id}.
    message_reference JSONB,
    flags            INTEGER NOT NULL DEFAULT 0,
    pinned           BOOLEAN NOT NULL DEFAULT FALSE,
    edited_at        TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- History is read newest first per channel.
CREATE INDEX messages_channel_id_id ON messages (channel_id, id DESC);

-- emoji_key is the custom emoji's id, or the unicode emoji itself.
CREATE TABLE reactions (
    message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji_key  TEXT NOT NULL,
    emoji_id   BIGINT,
    emoji_name TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, emoji_key, user_id)
);

CREATE TABLE read_states (
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel_id      BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    last_message_id BIGINT,
    mention_count   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, channel_id)
);

-- type: 1 friend, 2 blocked, 3 incoming request, 4 outgoing request (from user_id's side).
CREATE TABLE relationships (
    user_id  BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    other_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type     INTEGER NOT NULL,
    nickname TEXT,
    since    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, other_id)
);

CREATE TABLE applications (
    id                     BIGINT PRIMARY KEY,
    name                   TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    icon                   TEXT,
    owner_id               BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The bot user shares the application's id once created.
    bot_user_id            BIGINT REFERENCES users (id) ON DELETE SET NULL,
    bot_public             BOOLEAN NOT NULL DEFAULT TRUE,
    bot_require_code_grant BOOLEAN NOT NULL DEFAULT FALSE,
    verify_key             TEXT NOT NULL,
    flags                  BIGINT NOT NULL DEFAULT 0,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX applications_owner_id ON applications (owner_id);
