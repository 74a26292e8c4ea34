DROP TRIGGER users_notify_listing ON users;
DROP FUNCTION hallpass_notify_listing();
