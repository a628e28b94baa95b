-- Message search (GET /guilds/{id}/messages/search, /channels/{id}/messages/search).
--
-- One tsvector per message holds both what full-text search matches and what the filters ask
-- for, so that a single GIN index answers any mix of them: the words of the content (the
-- 'simple' configuration: no stemming and no stop words, so every language works; lower-cased
-- by ICU's root collation, as the database's own locale may be C, which lower-cases ASCII
-- only), and marker lexemes for the author, the users mentioned, what the message has and
-- whether it is pinned. A marker starts with a space, which the text parser never puts in a
-- lexeme, so no message text can forge one.
CREATE FUNCTION message_search_vector(
    content TEXT,
    author_id BIGINT,
    mentions BIGINT[],
    attachments JSONB,
    embeds JSONB,
    pinned BOOLEAN
) RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsvector('simple'::regconfig, lower(content COLLATE "und-x-icu"))
        || array_to_tsvector(
            array_remove(ARRAY[
                ' a' || author_id::text,
                CASE WHEN attachments <> '[]'::jsonb THEN ' file' END,
                CASE WHEN attachments @? '$[*] ? (@.content_type starts with "image/")'
                       OR embeds @? '$[*] ? (@.type == "image" || @.type == "gifv" || exists(@.image))'
                     THEN ' image' END,
                CASE WHEN attachments @? '$[*] ? (@.content_type starts with "video/")'
                       OR embeds @? '$[*] ? (@.type == "video" || exists(@.video))'
                     THEN ' video' END,
                CASE WHEN attachments @? '$[*] ? (@.content_type starts with "audio/")'
                     THEN ' sound' END,
                CASE WHEN embeds <> '[]'::jsonb THEN ' embed' END,
                CASE WHEN content ~* 'https?://[^[:space:]]' THEN ' link' END,
                CASE WHEN pinned THEN ' pinned' END
            ], NULL)
            || string_to_array(regexp_replace(array_to_string(mentions, ','), '([0-9]+)', ' m\1', 'g'), ',')
        )
$$;

ALTER TABLE messages ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (
        message_search_vector(content, author_id, mentions, attachments, embeds, pinned)
    ) STORED;
CREATE INDEX messages_search_vector ON messages USING GIN (search_vector);
-- A guild's messages newest first: the plan for searches whose filters match many messages
-- (read the index backwards, stop at the page).
CREATE INDEX messages_guild_id_id ON messages (guild_id, id DESC);
-- Searches leave ephemeral messages out (`flags & 64 = 0`): without statistics on that
-- expression the planner guesses it keeps 0.5% of the rows, and then picks plans that read
-- every match of a common word.
CREATE STATISTICS messages_ephemeral ON (flags & 64) FROM messages;
