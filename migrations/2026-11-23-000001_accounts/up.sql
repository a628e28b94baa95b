-- Accounts and their login sessions.

CREATE TABLE users (
    id             BIGINT PRIMARY KEY,              -- snowflake
    username       TEXT NOT NULL,
    discriminator  TEXT NOT NULL,                   -- four digits, unique per username
    global_name    TEXT,
    email          TEXT,
    password_hash  TEXT,                            -- bcrypt
    avatar         TEXT,
    banner         TEXT,
    bio            TEXT NOT NULL DEFAULT '',
    pronouns       TEXT NOT NULL DEFAULT '',
    accent_color   INTEGER,
    bot            BOOLEAN NOT NULL DEFAULT FALSE,
    system         BOOLEAN NOT NULL DEFAULT FALSE,
    verified       BOOLEAN NOT NULL DEFAULT FALSE,
    mfa_enabled    BOOLEAN NOT NULL DEFAULT FALSE,
    flags          BIGINT NOT NULL DEFAULT 0,
    public_flags   BIGINT NOT NULL DEFAULT 0,
    premium_type   INTEGER NOT NULL DEFAULT 0,
    rights         BIGINT NOT NULL DEFAULT 0,       -- instance rights; bit 0 = OPERATOR
    disabled       BOOLEAN NOT NULL DEFAULT FALSE,
    deleted        BOOLEAN NOT NULL DEFAULT FALSE,
    date_of_birth  DATE,
    -- Only the settings the user changed; the defaults are laid under them when read.
    settings       JSONB NOT NULL DEFAULT '{}',
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Usernames are not unique; a username with its discriminator is (case-insensitively).
CREATE UNIQUE INDEX users_tag_key ON users (lower(username), discriminator);
CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE email IS NOT NULL;

-- One row per issued token: logging out deletes it, a password change deletes all others.
CREATE TABLE auth_sessions (
    id          BIGINT PRIMARY KEY,                 -- snowflake, carried in the token
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX auth_sessions_user_id ON auth_sessions (user_id);
