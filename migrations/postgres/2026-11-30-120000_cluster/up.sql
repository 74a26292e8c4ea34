-- Several Hallpass processes on one database (docs/deploy.md).
--
-- 1. Change notifications. Every committed write that a cache may depend on sends
--    `NOTIFY hallpass_changes` (payload: the table), from a trigger rather than from the
--    service code, so that every writer is covered: the server, the recovery CLI, a restore,
--    an operator's psql. Each process LISTENs on a connection of its own (db::changes) and
--    re-reads the database after a notification. Over-notifying is harmless (a cache reads
--    once more); a write that notifies nothing would be a security bug, so only writes that
--    cannot end or narrow access are left out:
--      * sessions: INSERT (a new sign-in narrows nothing, and must not flush every cache),
--        an UPDATE of a signed-in session that only lengthens `expires_at`, and the deletion
--        of a session without a user;
--      * users.last_login_at / updated_at, identities.last_login_at: bookkeeping written at
--        sign-in. (api_keys.last_used_at does notify: the key cache decides from it when to
--        write it again, and it is written at most once a minute per key.)
--      * the settings row rewritten unchanged (`db::write_tx` takes its lock that way);
--      * audit_events, oidc_flows and rate_limits: no trigger at all.
--    Row-level triggers (with WHEN filters) rather than statement-level ones: a statement
--    fires its statement trigger even when it changed no row, and PostgreSQL folds identical
--    notifications of one transaction into one.
CREATE FUNCTION hallpass_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hallpass_changes', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

-- Tables where every write counts.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['api_keys', 'groups', 'group_members', 'apps', 'app_groups',
                             'app_users', 'oidc_providers'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I '
                       'FOR EACH ROW EXECUTE FUNCTION hallpass_notify_change()',
                       t || '_notify', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['users', 'sessions', 'api_keys', 'identities', 'groups',
                             'group_members', 'apps', 'app_groups', 'app_users',
                             'oidc_providers', 'settings'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION hallpass_notify_change()',
                       t || '_notify_truncate', t);
    END LOOP;
END
$$;

CREATE TRIGGER users_notify AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION hallpass_notify_change();
CREATE TRIGGER users_notify_update AFTER UPDATE ON users
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_login_at' - 'updated_at')
          IS DISTINCT FROM (to_jsonb(NEW) - 'last_login_at' - 'updated_at'))
    EXECUTE FUNCTION hallpass_notify_change();

CREATE TRIGGER identities_notify AFTER INSERT OR DELETE ON identities
    FOR EACH ROW EXECUTE FUNCTION hallpass_notify_change();
CREATE TRIGGER identities_notify_update AFTER UPDATE ON identities
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_login_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_login_at'))
    EXECUTE FUNCTION hallpass_notify_change();

CREATE TRIGGER sessions_notify_delete AFTER DELETE ON sessions
    FOR EACH ROW WHEN (OLD.user_id IS NOT NULL)
    EXECUTE FUNCTION hallpass_notify_change();
CREATE TRIGGER sessions_notify_update AFTER UPDATE ON sessions
    FOR EACH ROW
    WHEN (OLD.user_id IS DISTINCT FROM NEW.user_id
          OR (OLD.user_id IS NOT NULL
              AND (OLD.id IS DISTINCT FROM NEW.id
                   OR OLD.data IS DISTINCT FROM NEW.data
                   OR NEW.expires_at < OLD.expires_at)))
    EXECUTE FUNCTION hallpass_notify_change();

CREATE TRIGGER settings_notify AFTER INSERT OR DELETE ON settings
    FOR EACH ROW EXECUTE FUNCTION hallpass_notify_change();
CREATE TRIGGER settings_notify_update AFTER UPDATE ON settings
    FOR EACH ROW WHEN (OLD IS DISTINCT FROM NEW)
    EXECUTE FUNCTION hallpass_notify_change();

-- 2. Brute-force counters shared by every process (service::rate_limit): one row per
--    counter and window, counted with an atomic upsert. Times are the database server's
--    clock in milliseconds, so processes whose clocks differ still agree. `account` is a
--    keyed hash of the attempted name ('' for the per-address counter), never the name.
CREATE TABLE rate_limits (
    action TEXT NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (action, client, account)
);
