-- An account its owner deleted keeps its messages under the name "Deleted User 1a2b3c4d" #0000,
-- as on Discord; such a tag may come twice, so tags are unique among live accounts only.
DROP INDEX users_tag_key;
CREATE UNIQUE INDEX users_tag_key ON users (lower(username), discriminator) WHERE NOT deleted;
