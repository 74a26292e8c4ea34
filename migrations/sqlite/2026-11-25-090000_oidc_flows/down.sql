ALTER TABLE settings DROP COLUMN proxy_preset_previous;
DROP TABLE oidc_flows;
