DROP TABLE guild_templates;
DROP TABLE guild_widgets;
DROP TABLE guild_welcome_screens;
DROP TABLE user_settings_protos;
