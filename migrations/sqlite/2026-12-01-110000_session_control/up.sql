-- "Your sessions" (docs/sessions-and-lockouts.md): what a signed-in session shows about
-- itself. Written when the session becomes signed in; `last_seen_at` is touched at most
-- once a minute per session, in batches (service::sessions::Store), never per request.
ALTER TABLE sessions ADD COLUMN signed_in_at BIGINT;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
-- The lockout view names the account of a counter at its limit. Only PostgreSQL stores
-- counters here; the column exists on SQLite too so both schemas stay one.
ALTER TABLE rate_limits ADD COLUMN label TEXT;
ALTER TABLE rate_limits ADD COLUMN lifted_at BIGINT;
