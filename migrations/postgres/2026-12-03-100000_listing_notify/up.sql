-- The user table's pages are kept while nothing they show changes (service::users). Their
-- last sign-in column is bookkeeping that the triggers of 2026-11-30-120000_cluster leave out
-- of `hallpass_changes` (a sign-in must not flush the session and key caches), so a change
-- of it notifies a channel of its own, which only the kept pages listen to.
CREATE FUNCTION hallpass_notify_listing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hallpass_listing', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER users_notify_listing AFTER UPDATE OF last_login_at ON users
    FOR EACH ROW WHEN (OLD.last_login_at IS DISTINCT FROM NEW.last_login_at)
    EXECUTE FUNCTION hallpass_notify_listing();
