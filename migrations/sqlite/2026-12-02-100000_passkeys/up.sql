-- Passkeys (WebAuthn, issue 15): several per account, each a way to sign in on its own
-- (discoverable credential) and a second factor after a password.
--
-- `credential_id` is the authenticator's id for the credential (base64url), unique across the
-- instance: a discoverable sign-in finds its row by it. `user_handle` is the random id the
-- authenticator keeps for the account (a UUID, the same for all of an account's passkeys;
-- never the numeric id). `passkey` is the credential as webauthn-rs serialises it (public
-- key, signature counter, flags): the counter is updated in it after each use.
CREATE TABLE passkeys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL,
    credential_id TEXT    NOT NULL UNIQUE,
    user_handle   TEXT    NOT NULL,
    passkey       TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_user ON passkeys (user_id);
