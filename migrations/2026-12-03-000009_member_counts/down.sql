DROP TRIGGER members_departed ON members;
DROP TRIGGER members_joined ON members;
DROP FUNCTION count_departed_members();
DROP FUNCTION count_joined_members();
ALTER TABLE guilds DROP COLUMN member_count;
