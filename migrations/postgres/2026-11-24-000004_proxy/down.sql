ALTER TABLE settings DROP COLUMN break_glass_admin;
ALTER TABLE settings DROP COLUMN proxy_preset;
