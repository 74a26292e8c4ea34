ALTER TABLE oidc_providers DROP COLUMN groups_claim;
