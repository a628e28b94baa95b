DROP TRIGGER members_counted ON members;
DROP FUNCTION count_guild_members();
ALTER TABLE guilds DROP COLUMN member_count;
