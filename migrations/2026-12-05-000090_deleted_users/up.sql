-- An account its owner deleted keeps its messages under the name "Deleted User" #0000, as on
-- Discord; any number of them may share that tag, so the tag is unique among live accounts only.
DROP INDEX users_tag_key;
CREATE UNIQUE INDEX users_tag_key ON users (lower(username), discriminator) WHERE NOT deleted;
