-- Invite links (issue 15): an admin invites someone by a single-use link that opens a
-- sign-up page; the new account gets the role and groups the invite names.
--
-- No NOTIFY trigger on PostgreSQL (see 2026-11-30-120000_cluster): no cache reads these
-- tables. An invite is looked up in the database at every use, inside the locked
-- transaction of the sign-up, so a revoke in one process stops a sign-up in another at
-- once; what a sign-up changes (users, group_members) notifies through those tables.
CREATE TABLE invites (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    -- HMAC-SHA256 (server secret) of the token, like api_keys.key_hmac: the token itself
    -- is shown once, when the invite is made, and never stored
    token_hmac     TEXT    NOT NULL UNIQUE,
    -- hints that fill in the sign-up form (the invitee may change them)
    email          TEXT,
    username       TEXT,
    -- the new account's role ('admin', 'user' or 'viewer')
    role           TEXT    NOT NULL,
    -- 1: the new account waits for an administrator's approval ('pending')
    needs_approval INTEGER NOT NULL DEFAULT 0,
    created_by     BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    -- set once, by the sign-up that used it (NULL used_by: that account was purged since)
    used_at        BIGINT,
    used_by        BIGINT  REFERENCES users (id) ON DELETE SET NULL,
    revoked_at     BIGINT
);
CREATE INDEX invites_created ON invites (created_at);

-- The groups the new account joins (a deleted group drops out of the invite).
CREATE TABLE invite_groups (
    invite_id BIGINT NOT NULL REFERENCES invites (id) ON DELETE CASCADE,
    group_id  BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (invite_id, group_id)
);
CREATE INDEX invite_groups_group ON invite_groups (group_id);
