-- "Your sessions" (docs/sessions-and-lockouts.md): what a signed-in session shows about
-- itself. Written when the session becomes signed in; `last_seen_at` is touched at most
-- once a minute per session, in batches (service::sessions::Store), never per request.
--
-- No trigger change: `sessions_notify_update` (migration 2026-11-30-120000_cluster) fires
-- only when user_id, id or data change or expires_at shrinks, so an UPDATE of these columns
-- alone notifies nobody and every process keeps its caches (tests/http/cluster/probe.rs).
-- They are written together with data at sign-in, which notifies anyway (user_id changes).
ALTER TABLE sessions ADD COLUMN signed_in_at BIGINT;
ALTER TABLE sessions ADD COLUMN last_seen_at BIGINT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;

-- The lockout view (`/admin/lockouts`) names the account of a counter at its limit. The
-- attempted name (normalised, at most 100 characters, as the audit log records it at the
-- first refusal) is stored only once the account counter reaches its limit; below it the
-- table still holds keyed hashes alone. A lift (audited) starts the counter afresh (0
-- failures, a new window) and stamps `lifted_at`: every process reads the lifted counters
-- when the `hallpass_limits` channel moves and forgets its own copy of any counter whose
-- window opened before the lift. The row goes when its window closes (`purge`).
ALTER TABLE rate_limits ADD COLUMN label TEXT;
ALTER TABLE rate_limits ADD COLUMN lifted_at BIGINT;
