DROP INDEX users_tag_key;
CREATE UNIQUE INDEX users_tag_key ON users (lower(username), discriminator);
