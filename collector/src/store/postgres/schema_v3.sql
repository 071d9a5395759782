-- Version 3 of the PostgreSQL schema: GET /audit/activity without counting the trail
-- (collector/src/store/activity.rs explains the plan both stores follow; postgres/activity.rs
-- runs it here).

-- One row per (hour, type, method, status) with its event count; a missing status is -1.
-- The hour is floor(timestamp_ms / 3600000), spelled so it also floors before 1970.
CREATE TABLE activity_hourly (
    hour BIGINT NOT NULL,
    type TEXT NOT NULL,
    method TEXT NOT NULL,
    status INTEGER NOT NULL,
    events BIGINT NOT NULL,
    PRIMARY KEY (hour, type, method, status)
);
INSERT INTO activity_hourly (hour, type, method, status, events)
    SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000, type, method,
           coalesce(status, -1), count(*)
    FROM events GROUP BY 1, 2, 3, 4;

-- Kept by statement-level triggers over the statement's rows (transition tables): one
-- grouped upsert per sealing transaction, one grouped update per purge, whoever runs them
-- (the sealer, retention, `migrate`). Those all lock `chain_head` first, so the upserts
-- never race each other.
CREATE FUNCTION audit_activity_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO activity_hourly AS rollup (hour, type, method, status, events)
        SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000, type, method,
               coalesce(status, -1), count(*)
        FROM stored GROUP BY 1, 2, 3, 4
        ON CONFLICT (hour, type, method, status) DO UPDATE SET events = rollup.events + excluded.events;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_count_activity AFTER INSERT ON events
    REFERENCING NEW TABLE AS stored FOR EACH STATEMENT EXECUTE FUNCTION audit_activity_count();

CREATE FUNCTION audit_activity_uncount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE activity_hourly AS rollup SET events = rollup.events - gone.events
    FROM (SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, type, method,
                 coalesce(status, -1) AS status, count(*) AS events
          FROM purged GROUP BY 1, 2, 3, 4) AS gone
    WHERE rollup.hour = gone.hour AND rollup.type = gone.type AND rollup.method = gone.method
      AND rollup.status = gone.status;
    RETURN NULL;
END
$$;
CREATE TRIGGER events_uncount_activity AFTER DELETE ON events
    REFERENCING OLD TABLE AS purged FOR EACH STATEMENT EXECUTE FUNCTION audit_activity_uncount();

-- The counts activity takes from `events` (a window's partial hours, a user's chart) read
-- these indexes only: the timestamp index (retention's) carries the columns counted, and
-- each user filter gets one by (user, time). Index-only scans need the visibility map,
-- which autovacuum keeps for an insert-only table.
DROP INDEX events_by_timestamp;
CREATE INDEX events_by_timestamp ON events (timestamp_ms) INCLUDE (status, method, type);
CREATE INDEX events_by_user_id_time ON events (user_id, timestamp_ms) INCLUDE (status, method, type);
CREATE INDEX events_by_user_email_time ON events (user_email, timestamp_ms) INCLUDE (status, method, type);
