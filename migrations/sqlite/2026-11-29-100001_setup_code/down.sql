ALTER TABLE settings DROP COLUMN setup_code;
