-- User search at scale: a folded search key per account and a trigram index over it.
-- `search_key` is the username, email and display name lower-cased by Unicode's rules, one per
-- line; Hallpass writes it in Rust (lower() and ILIKE fold only ASCII under the C locale).
-- Rows that exist now start empty and are filled at start-up (db::users::fill_search_keys),
-- so the partial index below finds them without reading the table.
--
-- pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: the database owner may
-- create it. On a managed PostgreSQL it must be on the provider's list of allowed extensions
-- (it is on the common ones), or created once by an administrator before Hallpass starts.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
ALTER TABLE users ADD COLUMN search_key TEXT NOT NULL DEFAULT '';
CREATE INDEX users_search_unfilled ON users (id) WHERE search_key = '';
-- "Contains" searches of three characters or more: LIKE '%…%' on a GIN trigram index.
CREATE INDEX users_search_key ON users USING gin (search_key gin_trgm_ops);
-- Searches of one or two characters match the start of the username: LIKE 'x%' can use a
-- btree only with the C collation's order, whatever the database's collation is.
CREATE INDEX users_username_prefix ON users (username_key text_pattern_ops);
