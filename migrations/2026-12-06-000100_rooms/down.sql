DROP TABLE room_events;
DROP TABLE rooms;
DROP TABLE room_api_keys;
