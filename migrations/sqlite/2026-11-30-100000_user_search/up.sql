-- User search at scale: a folded search key per account and a trigram index over it.
-- `search_key` is the username, email and display name lower-cased by Unicode's rules, one per
-- line; Hallpass writes it in Rust (SQLite's lower() folds only ASCII). Rows that exist now
-- start empty and are filled at start-up (db::users::fill_search_keys), so the partial index
-- below finds them without reading the table.
ALTER TABLE users ADD COLUMN search_key TEXT NOT NULL DEFAULT '';
CREATE INDEX users_search_unfilled ON users (id) WHERE search_key = '';

-- "Contains" searches of three characters or more: FTS5's trigram tokenizer indexes every
-- three-character run, so a substring query reads only the accounts that have its trigrams.
-- The key is folded already, hence case_sensitive 1 (no second, ASCII-only folding). An
-- external-content table: the text lives once, in users; the triggers keep the index in step
-- with every insert, delete and search_key rewrite, whatever code path writes the row.
CREATE VIRTUAL TABLE users_search USING fts5(
    search_key,
    content = 'users',
    content_rowid = 'id',
    tokenize = 'trigram case_sensitive 1'
);
CREATE TRIGGER users_search_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_search (rowid, search_key) VALUES (new.id, new.search_key);
END;
CREATE TRIGGER users_search_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_search (users_search, rowid, search_key) VALUES ('delete', old.id, old.search_key);
END;
CREATE TRIGGER users_search_update AFTER UPDATE OF search_key ON users BEGIN
    INSERT INTO users_search (users_search, rowid, search_key) VALUES ('delete', old.id, old.search_key);
    INSERT INTO users_search (rowid, search_key) VALUES (new.id, new.search_key);
END;
