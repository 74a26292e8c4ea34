-- Nothing on SQLite: the PostgreSQL migration of the same name adds a notification for the
-- last sign-in, which the kept user-table pages need there. On SQLite every commit rewrites
-- the WAL-index header those pages are kept under (db::changes).
SELECT 1;
