ALTER TABLE settings DROP COLUMN sso_enabled;
DROP INDEX identities_user_id;
DROP TABLE identities;
DROP TABLE oidc_providers;
