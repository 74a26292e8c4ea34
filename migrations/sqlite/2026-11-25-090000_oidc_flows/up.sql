-- Single sign-on round trips that were started and have not come back yet. The callback
-- consumes its row with one DELETE: of several deliveries of the same callback exactly one
-- finds it, so a code is never exchanged twice.
CREATE TABLE oidc_flows (
    -- SHA-256 (hex) of the `state` sent to the provider: the table does not hold usable states
    state_hash     TEXT    PRIMARY KEY NOT NULL,
    -- SHA-256 (hex) of a random value kept in the browser's session: a state is only accepted
    -- from the browser that started the sign-in
    binding        TEXT    NOT NULL,
    provider       TEXT    NOT NULL,
    -- the provider's settings when the sign-in started; a change in between refuses the callback
    fingerprint    TEXT    NOT NULL,
    nonce          TEXT    NOT NULL,
    pkce_verifier  TEXT    NOT NULL,
    -- 'login' or 'link' (Verify & Link, for link_user_id)
    purpose        TEXT    NOT NULL,
    link_user_id   BIGINT,
    -- where to go afterwards (a same-site path)
    next           TEXT    NOT NULL,
    -- the redirect URI sent in the authorization request, sent again with the code
    redirect_uri   TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL
);
CREATE INDEX oidc_flows_binding ON oidc_flows (binding);
CREATE INDEX oidc_flows_expires_at ON oidc_flows (expires_at);

-- Forward-auth: the header preset before the last change ('config' = the configured headers),
-- for the one step of undo on /admin/proxy; NULL when there is nothing to revert to.
ALTER TABLE settings ADD COLUMN proxy_preset_previous TEXT;
