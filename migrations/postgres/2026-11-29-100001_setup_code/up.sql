-- The one-time code the setup wizard asks for, shared by every process on this database and
-- printed by `hallpass setup-code`. NULL once the first admin exists.
ALTER TABLE settings ADD COLUMN setup_code TEXT;
