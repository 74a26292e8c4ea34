DROP TABLE audit_events;
DROP TABLE settings;
DROP TABLE sessions;
DROP TABLE users;
