-- The CDN: files waiting for their message, and guild emojis and stickers. Attachments live in
-- their message's `attachments` list; avatars, icons and the like are hashes on their rows.

-- A pre-upload (POST /channels/{id}/attachments): its file is PUT to uploads/{token}, then a
-- message names it by `{token}/{filename}` and it becomes an attachment.
CREATE TABLE pending_uploads (
    token      TEXT PRIMARY KEY,                    -- 32 random hex digits
    channel_id BIGINT NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    filename   TEXT NOT NULL,                       -- already cleaned
    size       BIGINT NOT NULL,                     -- declared, then as uploaded
    uploaded   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX pending_uploads_user_id ON pending_uploads (user_id);

CREATE TABLE emojis (
    id         BIGINT PRIMARY KEY,
    guild_id   BIGINT NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    user_id    BIGINT REFERENCES users (id) ON DELETE SET NULL,
    animated   BOOLEAN NOT NULL DEFAULT FALSE,
    available  BOOLEAN NOT NULL DEFAULT TRUE,
    roles      BIGINT[] NOT NULL DEFAULT '{}',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX emojis_guild_id ON emojis (guild_id);

-- format_type: 1 PNG, 2 APNG, 4 GIF (3, Lottie, is not taken).
CREATE TABLE stickers (
    id          BIGINT PRIMARY KEY,
    guild_id    BIGINT NOT NULL REFERENCES guilds (id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    description TEXT,
    tags        TEXT NOT NULL,
    format_type INTEGER NOT NULL,
    available   BOOLEAN NOT NULL DEFAULT TRUE,
    user_id     BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX stickers_guild_id ON stickers (guild_id);
