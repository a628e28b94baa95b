-- Applications' commands (global when guild_id is null) and the interactions that invoke them.

CREATE TABLE application_commands (
    id                         BIGINT PRIMARY KEY,
    application_id             BIGINT NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    guild_id                   BIGINT REFERENCES guilds (id) ON DELETE CASCADE,
    -- 1 chat input (slash), 2 user, 3 message.
    type                       INTEGER NOT NULL DEFAULT 1,
    name                       TEXT NOT NULL,
    description                TEXT NOT NULL DEFAULT '',
    options                    JSONB NOT NULL DEFAULT '[]',
    default_member_permissions TEXT,
    dm_permission              BOOLEAN NOT NULL DEFAULT true,
    nsfw                       BOOLEAN NOT NULL DEFAULT false,
    version                    BIGINT NOT NULL
);
-- One command of a kind and name per application and place.
CREATE UNIQUE INDEX application_commands_name
    ON application_commands (application_id, COALESCE(guild_id, 0), type, name);
CREATE INDEX application_commands_guild ON application_commands (guild_id);
