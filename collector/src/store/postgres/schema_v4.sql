-- Version 4 of the PostgreSQL schema: the user filters' (user, time) indexes of version 3
-- carry status and method but no longer `type`, the widest column: as on SQLite
-- (migration 12), every insert pays for them, and `type` made them several times larger.
DROP INDEX events_by_user_id_time;
DROP INDEX events_by_user_email_time;
CREATE INDEX events_by_user_id_time ON events (user_id, timestamp_ms) INCLUDE (status, method);
CREATE INDEX events_by_user_email_time ON events (user_email, timestamp_ms) INCLUDE (status, method);
