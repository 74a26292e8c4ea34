DROP INDEX users_username_prefix;
DROP INDEX users_search_key;
DROP INDEX users_search_unfilled;
ALTER TABLE users DROP COLUMN search_key;
-- pg_trgm stays: other objects may use it.
