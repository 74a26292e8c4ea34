-- Forward-auth: the header preset an admin chose in the UI (NULL: the configured headers).
ALTER TABLE settings ADD COLUMN proxy_preset TEXT;
