-- Version 6 of the PostgreSQL schema: GET /audit's `user_name` filter, as SQLite's migration
-- 14. The column is generated from the stored body (stored: PostgreSQL has no virtual
-- generated columns before 18), so the sealer and ingest write nothing more; adding it
-- rewrites `events` once. The `(user_name, seq)` index serves a filtered page in seq order.
ALTER TABLE events ADD COLUMN user_name TEXT GENERATED ALWAYS AS ((body::jsonb) ->> 'user_name') STORED;
CREATE INDEX events_by_user_name ON events (user_name, seq);
