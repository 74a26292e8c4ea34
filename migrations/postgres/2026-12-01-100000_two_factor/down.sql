ALTER TABLE oidc_providers DROP COLUMN second_factor;
ALTER TABLE settings DROP COLUMN second_factor_required;
DROP TABLE recovery_codes;
DROP TABLE user_totp;
