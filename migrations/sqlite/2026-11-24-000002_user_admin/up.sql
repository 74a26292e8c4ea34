-- User administration: soft delete, registration settings, API keys, indexes for the user table.
ALTER TABLE users ADD COLUMN deleted_at BIGINT;

ALTER TABLE settings ADD COLUMN auto_approve_registrations INTEGER NOT NULL DEFAULT 0;

CREATE TABLE api_keys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    -- the first characters of the key, shown so people can tell their keys apart
    prefix        TEXT    NOT NULL,
    -- hex HMAC-SHA256 of the whole key under the server secret; the key itself is never stored
    key_hmac      TEXT    NOT NULL UNIQUE,
    created_at    BIGINT  NOT NULL,
    last_used_at  BIGINT,
    expires_at    BIGINT
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);

-- Every filter and sort the admin user table offers has an index; sorts end in id (keyset).
CREATE INDEX users_role ON users (role, username_key);
CREATE INDEX users_status ON users (status, username_key);
CREATE INDEX users_role_status ON users (role, status, username_key);
CREATE INDEX users_created_at ON users (created_at, id);
CREATE INDEX users_last_login_at ON users (COALESCE(last_login_at, 0), id);
CREATE INDEX users_email_key_sort ON users (email_key, id);
CREATE INDEX audit_events_action ON audit_events (action, id);
CREATE INDEX audit_events_target ON audit_events (target, id);
