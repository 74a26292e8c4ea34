-- Hallpass initial schema (SQLite). Keep in step with migrations/postgres: same names, same columns.
-- Times are unix seconds (BIGINT) so both backends share one Rust type; booleans are 0/1 INTEGERs
-- because diesel's MultiConnection does not carry Bool.

CREATE TABLE users (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    username        TEXT    NOT NULL,
    -- lower-cased username: uniqueness and look-ups are case-insensitive
    username_key    TEXT    NOT NULL UNIQUE,
    email           TEXT,
    email_key       TEXT    UNIQUE,
    display_name    TEXT,
    role            TEXT    NOT NULL CHECK (role IN ('admin', 'user', 'viewer')),
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'active', 'rejected', 'disabled')),
    password_hash   TEXT,
    session_version BIGINT  NOT NULL DEFAULT 1,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    last_login_at   BIGINT,
    created_by      BIGINT  REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE sessions (
    -- SHA-256 of the cookie's session id: a copy of the table does not hand out live sessions
    id          TEXT   PRIMARY KEY NOT NULL,
    user_id     BIGINT REFERENCES users (id) ON DELETE CASCADE,
    data        TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL, -- unix milliseconds
    created_at  BIGINT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_user_id ON sessions (user_id);

-- One row of instance settings; writers also lock this row to serialise invariant checks.
CREATE TABLE settings (
    id                   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    local_login_enabled  INTEGER NOT NULL DEFAULT 1,
    registration_enabled INTEGER NOT NULL DEFAULT 0,
    updated_at           BIGINT  NOT NULL DEFAULT 0
);
INSERT INTO settings (id) VALUES (1);

CREATE TABLE audit_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        BIGINT NOT NULL,
    actor_id  BIGINT,
    actor     TEXT   NOT NULL,
    action    TEXT   NOT NULL,
    target    TEXT,
    ip        TEXT,
    outcome   TEXT   NOT NULL,
    detail    TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
