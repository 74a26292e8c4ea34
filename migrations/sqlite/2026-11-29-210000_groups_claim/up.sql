-- The claim of an OpenID provider's ID token (or userinfo) that lists the person's groups,
-- e.g. `groups`; NULL: groups are not read from this provider. At each sign-in the names
-- it lists fill the Hallpass groups of the same names (existing groups only).
ALTER TABLE oidc_providers ADD COLUMN groups_claim TEXT;
