DROP TABLE stickers;
DROP TABLE emojis;
DROP TABLE pending_uploads;
