DROP TABLE invite_groups;
DROP TABLE invites;
