-- Each guild keeps its member count, so READY (100 guilds of 1,000 members) reads 100 numbers
-- instead of counting 100,000 rows at every IDENTIFY. Triggers keep it, so no path that adds
-- or removes members (joins, kicks, bans, cascades from a deleted account) can forget it.
-- They run once per statement, not per row: deleting a guild of 100,000 members is one
-- update, not 100,000.
ALTER TABLE guilds ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;

-- No member joins or leaves between the count and the triggers.
LOCK TABLE members IN SHARE ROW EXCLUSIVE MODE;

UPDATE guilds
SET member_count = (SELECT count(*) FROM members WHERE members.guild_id = guilds.id);

CREATE FUNCTION count_joined_members() RETURNS trigger AS $$
BEGIN
    UPDATE guilds SET member_count = member_count + joined.n
    FROM (SELECT guild_id, count(*) AS n FROM joined_members GROUP BY guild_id) AS joined
    WHERE guilds.id = joined.guild_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE FUNCTION count_departed_members() RETURNS trigger AS $$
BEGIN
    UPDATE guilds SET member_count = member_count - departed.n
    FROM (SELECT guild_id, count(*) AS n FROM departed_members GROUP BY guild_id) AS departed
    WHERE guilds.id = departed.guild_id;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER members_joined
    AFTER INSERT ON members
    REFERENCING NEW TABLE AS joined_members
    FOR EACH STATEMENT EXECUTE FUNCTION count_joined_members();

CREATE TRIGGER members_departed
    AFTER DELETE ON members
    REFERENCING OLD TABLE AS departed_members
    FOR EACH STATEMENT EXECUTE FUNCTION count_departed_members();
