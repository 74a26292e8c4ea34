DROP TABLE rate_limits;
DROP FUNCTION hallpass_notify_change() CASCADE;
