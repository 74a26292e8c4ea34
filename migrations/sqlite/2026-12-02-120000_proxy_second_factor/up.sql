-- Whether a sign-in vouched for by a trusted forward-auth proxy asks for Hallpass's own
-- second factor too (issue 14). Off by default: the proxy did its own checks.
ALTER TABLE settings ADD COLUMN second_factor_after_proxy INTEGER NOT NULL DEFAULT 0;
