-- Groups of users and the apps Hallpass guards through forward-auth (issue 11).

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    -- lower-cased name: group names are unique regardless of case
    name_key    TEXT    NOT NULL UNIQUE,
    description TEXT,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE group_members (
    group_id    BIGINT  NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id     BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 'admin' when an administrator added the member, else the id of the sign-in source whose
    -- groups claim did ('proxy' or an OIDC provider id): a claim refreshes only its own rows
    source      TEXT    NOT NULL DEFAULT 'admin',
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
-- the hot path reads one user's groups on every forward-auth request
CREATE INDEX group_members_user ON group_members (user_id, group_id);

CREATE TABLE apps (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    name               TEXT    NOT NULL,
    name_key           TEXT    NOT NULL UNIQUE,
    -- portal link and icon (an emoji, or an http(s) or / URL of an image)
    url                TEXT,
    icon               TEXT,
    -- host patterns and path prefixes, one per line ('app.example.com', '*.example.com'; '/admin')
    hosts              TEXT    NOT NULL,
    paths              TEXT    NOT NULL DEFAULT '',
    -- 'public', 'signed_in' or 'restricted' (then roles, app_groups and app_users say who)
    access             TEXT    NOT NULL,
    -- comma-separated roles allowed under 'restricted'
    roles              TEXT    NOT NULL DEFAULT '',
    viewers_read_only  INTEGER NOT NULL DEFAULT 0,
    -- 'ui' (managed on /admin/apps) or 'file' ([[apps]] in the configuration; read-only in the UI)
    source             TEXT    NOT NULL DEFAULT 'ui',
    created_at         BIGINT  NOT NULL,
    updated_at         BIGINT  NOT NULL
);

CREATE TABLE app_groups (
    app_id    BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    group_id  BIGINT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (app_id, group_id)
);

CREATE TABLE app_users (
    app_id    BIGINT NOT NULL REFERENCES apps (id) ON DELETE CASCADE,
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (app_id, user_id)
);
CREATE INDEX app_groups_group ON app_groups (group_id);
CREATE INDEX app_users_user ON app_users (user_id);

-- Bumped in the transaction of every change to apps, groups or memberships: a process that
-- caches the rules reloads them when it moves (see service::authz).
ALTER TABLE settings ADD COLUMN rules_version BIGINT NOT NULL DEFAULT 0;
