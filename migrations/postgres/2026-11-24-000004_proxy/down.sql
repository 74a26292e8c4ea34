ALTER TABLE settings DROP COLUMN proxy_preset;
