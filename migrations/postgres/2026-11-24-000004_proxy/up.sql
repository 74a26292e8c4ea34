-- Forward-auth: the header preset an admin chose in the UI (NULL: the configured headers).
ALTER TABLE settings ADD COLUMN proxy_preset TEXT;
-- 1 while HALLPASS_ADMIN_KEY is set (written at start-up): the username "admin" is reserved.
ALTER TABLE settings ADD COLUMN break_glass_admin INTEGER NOT NULL DEFAULT 0;
