-- The rooms service (docs/rooms.md, "Server API").

-- Applications' API keys, made by operators. The secret is 32 random bytes shown once; only its
-- SHA-256 is kept (see src/rooms/keys.rs for why no bcrypt). The webhook secret signs what the
-- server sends, so the server must keep it as it is.
CREATE TABLE room_api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 BYTEA NOT NULL,
    webhook_url TEXT,
    webhook_secret TEXT NOT NULL,
    created_by BIGINT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Rooms made through the API (by an API key) or by guests and users (`api_key` NULL). The id is
-- the room's address: unguessable unless an application chose it.
CREATE TABLE rooms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    public BOOLEAN NOT NULL,
    -- Whether POST /rooms/guest admits guests (always for a public room).
    guests BOOLEAN NOT NULL,
    max_participants INTEGER NOT NULL,
    empty_timeout_secs INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    api_key TEXT REFERENCES room_api_keys (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX rooms_public ON rooms (created_at DESC, id) WHERE public;

-- What happened in each room, read by cursor (the id) by the API key that made the room. No
-- foreign keys: a deleted room's events (room_finished among them) stay readable until they age
-- out.
CREATE TABLE room_events (
    id BIGSERIAL PRIMARY KEY,
    room_id TEXT NOT NULL,
    api_key TEXT,
    event TEXT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX room_events_room ON room_events (room_id, api_key, id);
CREATE INDEX room_events_age ON room_events (created_at);
