ALTER TABLE settings DROP COLUMN second_factor_providers;
ALTER TABLE settings DROP COLUMN second_factor_required;
DROP TABLE recovery_codes;
DROP TABLE user_totp;
