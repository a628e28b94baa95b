DROP TABLE instance_bans;
DROP TABLE registration_tokens;
DROP TABLE instance_config;
