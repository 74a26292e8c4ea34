-- Single sign-on: OpenID providers defined in the admin UI, identities linked to users, and
-- the instance switch for SSO login.

CREATE TABLE oidc_providers (
    -- a slug chosen by the admin; part of the callback URL /api/auth/oidc/{id}/callback
    id              TEXT    PRIMARY KEY,
    label           TEXT    NOT NULL,
    issuer          TEXT    NOT NULL,
    client_id       TEXT    NOT NULL,
    -- XChaCha20-Poly1305 under a key derived from the server secret; NULL for a public client
    client_secret   TEXT,
    scopes          TEXT    NOT NULL,
    subject_claim   TEXT    NOT NULL,
    username_claim  TEXT    NOT NULL,
    email_claim     TEXT    NOT NULL,
    policy          TEXT    NOT NULL,
    enabled         INTEGER NOT NULL DEFAULT 1,
    -- JSON of the connection settings before the last save (one step of undo), or NULL
    previous        TEXT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL
);

CREATE TABLE identities (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id         BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- an OIDC provider id (or 'proxy' for reverse-proxy identities)
    provider        TEXT    NOT NULL,
    -- the issuer when the link was made: a provider whose issuer changes no longer matches it
    issuer          TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    -- claims seen at the last sign-in, cleaned and capped; for display only
    email           TEXT,
    display_name    TEXT,
    created_at      BIGINT  NOT NULL,
    last_login_at   BIGINT,
    UNIQUE (provider, issuer, subject)
);
CREATE INDEX identities_user_id ON identities (user_id);

-- NULL: SSO login is on exactly when providers are defined in the environment.
ALTER TABLE settings ADD COLUMN sso_enabled INTEGER;
