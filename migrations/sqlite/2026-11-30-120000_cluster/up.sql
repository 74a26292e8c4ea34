-- The PostgreSQL migration of the same name adds change notifications (triggers) and a table
-- of shared brute-force counters. SQLite needs neither: its change probe reads the WAL index
-- (db::changes), and a SQLite database is served by one process, which keeps its brute-force
-- counters in memory. The table exists here too so that both schemas stay one.
CREATE TABLE rate_limits (
    action TEXT NOT NULL,
    client TEXT NOT NULL,
    account TEXT NOT NULL,
    window_start BIGINT NOT NULL,
    failures INTEGER NOT NULL,
    PRIMARY KEY (action, client, account)
);
