-- Version 5 of the PostgreSQL schema: the final count a sender shutting down reported
-- (NULL: it has not said it is stopping), as SQLite's migration 13; the collector records
-- the sender as finished once every number up to it is accounted for.
ALTER TABLE senders ADD COLUMN final_count BIGINT;
