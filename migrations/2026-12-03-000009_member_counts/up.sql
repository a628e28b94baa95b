-- Each guild keeps its member count, so READY (100 guilds of 1,000 members) reads 100 numbers
-- instead of counting 100,000 rows at every IDENTIFY. A trigger keeps it, so no path that adds
-- or removes members (joins, kicks, bans, cascades from a deleted account) can forget it.
ALTER TABLE guilds ADD COLUMN member_count BIGINT NOT NULL DEFAULT 0;

UPDATE guilds
SET member_count = (SELECT count(*) FROM members WHERE members.guild_id = guilds.id);

CREATE FUNCTION count_guild_members() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE guilds SET member_count = member_count + 1 WHERE id = NEW.guild_id;
    ELSE
        UPDATE guilds SET member_count = member_count - 1 WHERE id = OLD.guild_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER members_counted
    AFTER INSERT OR DELETE ON members
    FOR EACH ROW EXECUTE FUNCTION count_guild_members();
