ALTER TABLE settings DROP COLUMN rules_version;
DROP TABLE app_users;
DROP TABLE app_groups;
DROP TABLE apps;
DROP TABLE group_members;
DROP TABLE groups;
