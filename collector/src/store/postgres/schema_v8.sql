-- Version 8 of the PostgreSQL schema: two fewer b-trees for the one sealer to fill per event.
-- The sealer's time is PostgreSQL inserting each event into `events` and its eleven indexes
-- (docs/postgres.md, "Where the sealer's time goes": 4-8 µs per index per event, in one
-- backend). The two `(user, timestamp)` covering indexes of version 4 served only a user's
-- activity chart; as on SQLite (its version 16) per-user hourly rollups serve its whole hours,
-- and the timestamp index, now carrying the two user columns, its partial hours (the edges of
-- a window, index-only). A user's filtered pages keep their `(user, seq)` indexes.

-- First, no replica still running the previous build may seal or purge until this commits:
-- rows it sealed after the fill below read `events` would be counted by the old trigger
-- function only (never in these rollups), rows it purged would stay counted in them. Reads
-- go on; sealing waits (as it would for the DROP INDEX at the end anyway).
LOCK TABLE events IN SHARE MODE;

-- Events per (user, hour, type, method, status), one table per user column so a user filter
-- reads its own by the same predicates as `events`; an event without that column is not
-- counted in it. The user leads the key, so a chart reads one contiguous range however many
-- users there are (PostgreSQL's b-tree cannot skip through an hour-first key). The hour is
-- floored as in `activity_hourly`.
CREATE TABLE activity_user_id_hourly (
    hour BIGINT NOT NULL,
    user_id TEXT NOT NULL,
    type TEXT NOT NULL,
    method TEXT NOT NULL,
    status INTEGER NOT NULL,
    events BIGINT NOT NULL,
    PRIMARY KEY (user_id, hour, type, method, status)
);
CREATE TABLE activity_user_email_hourly (
    hour BIGINT NOT NULL,
    user_email TEXT NOT NULL,
    type TEXT NOT NULL,
    method TEXT NOT NULL,
    status INTEGER NOT NULL,
    events BIGINT NOT NULL,
    PRIMARY KEY (user_email, hour, type, method, status)
);
INSERT INTO activity_user_id_hourly (hour, user_id, type, method, status, events)
    SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000, user_id, type, method,
           coalesce(status, -1), count(*)
    FROM events WHERE user_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5;
INSERT INTO activity_user_email_hourly (hour, user_email, type, method, status, events)
    SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000, user_email, type, method,
           coalesce(status, -1), count(*)
    FROM events WHERE user_email IS NOT NULL GROUP BY 1, 2, 3, 4, 5;

-- The triggers of version 3 count into all three rollups, in the same statement-level pass
-- (one grouped upsert per rollup per sealing transaction; all of them run under the
-- `chain_head` lock, so the upserts never race). Rows are upserted in key order.
CREATE OR REPLACE FUNCTION audit_activity_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO activity_hourly AS rollup (hour, type, method, status, events)
        SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000, type, method,
               coalesce(status, -1), count(*)
        FROM stored GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
        ON CONFLICT (hour, type, method, status) DO UPDATE SET events = rollup.events + excluded.events;
    INSERT INTO activity_user_id_hourly AS rollup (hour, user_id, type, method, status, events)
        SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000, user_id, type, method,
               coalesce(status, -1), count(*)
        FROM stored WHERE user_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5 ORDER BY 2, 1, 3, 4, 5
        ON CONFLICT (user_id, hour, type, method, status) DO UPDATE SET events = rollup.events + excluded.events;
    INSERT INTO activity_user_email_hourly AS rollup (hour, user_email, type, method, status, events)
        SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000, user_email, type, method,
               coalesce(status, -1), count(*)
        FROM stored WHERE user_email IS NOT NULL GROUP BY 1, 2, 3, 4, 5 ORDER BY 2, 1, 3, 4, 5
        ON CONFLICT (user_email, hour, type, method, status) DO UPDATE SET events = rollup.events + excluded.events;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION audit_activity_uncount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE activity_hourly AS rollup SET events = rollup.events - gone.events
    FROM (SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, type, method,
                 coalesce(status, -1) AS status, count(*) AS events
          FROM purged GROUP BY 1, 2, 3, 4) AS gone
    WHERE rollup.hour = gone.hour AND rollup.type = gone.type AND rollup.method = gone.method
      AND rollup.status = gone.status;
    UPDATE activity_user_id_hourly AS rollup SET events = rollup.events - gone.events
    FROM (SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, user_id, type,
                 method, coalesce(status, -1) AS status, count(*) AS events
          FROM purged WHERE user_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5) AS gone
    WHERE rollup.hour = gone.hour AND rollup.user_id = gone.user_id AND rollup.type = gone.type
      AND rollup.method = gone.method AND rollup.status = gone.status;
    UPDATE activity_user_email_hourly AS rollup SET events = rollup.events - gone.events
    FROM (SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, user_email,
                 type, method, coalesce(status, -1) AS status, count(*) AS events
          FROM purged WHERE user_email IS NOT NULL GROUP BY 1, 2, 3, 4, 5) AS gone
    WHERE rollup.hour = gone.hour AND rollup.user_email = gone.user_email AND rollup.type = gone.type
      AND rollup.method = gone.method AND rollup.status = gone.status;
    RETURN NULL;
END
$$;

-- One b-tree instead of three: the timestamp index (retention's, the window's edges) carries
-- the user columns too, and the two `(user, timestamp)` indexes go.
DROP INDEX events_by_user_id_time;
DROP INDEX events_by_user_email_time;
DROP INDEX events_by_timestamp;
CREATE INDEX events_by_timestamp ON events (timestamp_ms) INCLUDE (status, method, type, user_id, user_email);
