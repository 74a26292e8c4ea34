ALTER TABLE rate_limits DROP COLUMN lifted_at;
ALTER TABLE rate_limits DROP COLUMN label;
ALTER TABLE sessions DROP COLUMN user_agent;
ALTER TABLE sessions DROP COLUMN ip;
ALTER TABLE sessions DROP COLUMN last_seen_at;
ALTER TABLE sessions DROP COLUMN signed_in_at;
