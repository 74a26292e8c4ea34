-- A second factor (issue 14): TOTP secrets, single-use recovery codes, the instance's
-- enforcement setting and the per-provider switch for single sign-on.

-- One TOTP secret per account. `secret` is sealed under the server secret (XChaCha20-Poly1305,
-- like oidc_providers.client_secret). `confirmed_at` is NULL while enrolment waits for its
-- first valid code; only a confirmed secret is asked for at sign-in. `last_step` is the time
-- step of the last code accepted: a code is refused unless its step is later (no replay).
CREATE TABLE user_totp (
    user_id      BIGINT  NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       TEXT    NOT NULL,
    confirmed_at BIGINT,
    last_step    BIGINT,
    created_at   BIGINT  NOT NULL
);

-- Ten per account, shown once; kept as an HMAC under the server secret (they are random,
-- so no slow hash is needed). `used_at` set: spent.
CREATE TABLE recovery_codes (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hmac TEXT    NOT NULL,
    used_at   BIGINT
);
CREATE INDEX recovery_codes_user ON recovery_codes (user_id);

-- Who must have a second factor: 'nobody', 'admins' or 'everyone'.
ALTER TABLE settings ADD COLUMN second_factor_required TEXT NOT NULL DEFAULT 'nobody';
-- The OpenID providers (ids, space-separated) after whose sign-in Hallpass asks for its own
-- second factor too; by default none (the provider did its own). Kept here rather than on
-- oidc_providers so that providers from the environment can be chosen as well.
ALTER TABLE settings ADD COLUMN second_factor_providers TEXT NOT NULL DEFAULT '';
