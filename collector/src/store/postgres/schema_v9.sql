-- Version 9 of the PostgreSQL schema: one b-tree fewer for the one sealer to fill per event,
-- and rollup rows that retention brings to zero are deleted.
--
-- `events.uuid` UNIQUE was a second copy of what `trail_uuids` (primary key uuid) already
-- holds, and its random inserts cost the sealer more than any other index (docs/postgres.md,
-- "What each b-tree costs the sealer"). A uuid is unique in `events` by construction: only the
-- sealer inserts into `events` (and `migrate`, into an empty trail, with each uuid into
-- `trail_uuids` in the same statement), only from `unsequenced`, whose rows ingest inserts only
-- for uuids it has just inserted into `trail_uuids`; and retention removes a uuid from
-- `trail_uuids` only once its event is in neither `unsequenced` nor `events`. So two rows of
-- one uuid would need two inserts of it into `trail_uuids` while the first is still there:
-- the primary key refuses the second (a retried event is a duplicate, on any replica).
-- What still looks a uuid up in `events` (a cursor, retention's forgetting of old uuids) goes
-- through `trail_uuids`, which has the event's timestamp, to the timestamp index, which now
-- has the uuid as its second key column: an exact lookup, however many events share a
-- millisecond, at ~24 bytes more per entry of an index the sealer fills anyway.
--
-- Safe while replicas of version 8 still run: they seal with the same INSERT, and their
-- cursor lookups and retention's forgetting of old uuids (`uuid = …`) stay right, only slower
-- (no index leads with the uuid: they read `events` whole) until they are replaced. The new index is built before anything is dropped, under a SHARE
-- lock taken first: reads go on, sealing and retention wait (a sealer holds `chain_head`
-- and then needs `events`; this holds only `events`, so the two cannot deadlock).
LOCK TABLE events IN SHARE MODE;

CREATE INDEX events_by_timestamp_uuid ON events (timestamp_ms, uuid) INCLUDE (status, method, type, user_id, user_email);
DROP INDEX events_by_timestamp;
ALTER INDEX events_by_timestamp_uuid RENAME TO events_by_timestamp;
ALTER TABLE events DROP CONSTRAINT events_uuid_key;

-- Retention takes its events back out of the rollups, and a row it brings to zero goes: a
-- rollup holds only hours that still have events (up to version 8 the zero rows stayed, and
-- every purged hour's rows with them, for ever).
CREATE OR REPLACE FUNCTION audit_activity_uncount() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE activity_hourly AS rollup SET events = rollup.events - gone.events
    FROM (SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, type, method,
                 coalesce(status, -1) AS status, count(*) AS events
          FROM purged GROUP BY 1, 2, 3, 4) AS gone
    WHERE rollup.hour = gone.hour AND rollup.type = gone.type AND rollup.method = gone.method
      AND rollup.status = gone.status;
    DELETE FROM activity_hourly AS rollup
    USING (SELECT DISTINCT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, type,
                           method, coalesce(status, -1) AS status
           FROM purged) AS gone
    WHERE rollup.hour = gone.hour AND rollup.type = gone.type AND rollup.method = gone.method
      AND rollup.status = gone.status AND rollup.events = 0;
    UPDATE activity_user_id_hourly AS rollup SET events = rollup.events - gone.events
    FROM (SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, user_id, type,
                 method, coalesce(status, -1) AS status, count(*) AS events
          FROM purged WHERE user_id IS NOT NULL GROUP BY 1, 2, 3, 4, 5) AS gone
    WHERE rollup.hour = gone.hour AND rollup.user_id = gone.user_id AND rollup.type = gone.type
      AND rollup.method = gone.method AND rollup.status = gone.status;
    DELETE FROM activity_user_id_hourly AS rollup
    USING (SELECT DISTINCT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour,
                           user_id, type, method, coalesce(status, -1) AS status
           FROM purged WHERE user_id IS NOT NULL) AS gone
    WHERE rollup.hour = gone.hour AND rollup.user_id = gone.user_id AND rollup.type = gone.type
      AND rollup.method = gone.method AND rollup.status = gone.status AND rollup.events = 0;
    UPDATE activity_user_email_hourly AS rollup SET events = rollup.events - gone.events
    FROM (SELECT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour, user_email,
                 type, method, coalesce(status, -1) AS status, count(*) AS events
          FROM purged WHERE user_email IS NOT NULL GROUP BY 1, 2, 3, 4, 5) AS gone
    WHERE rollup.hour = gone.hour AND rollup.user_email = gone.user_email AND rollup.type = gone.type
      AND rollup.method = gone.method AND rollup.status = gone.status;
    DELETE FROM activity_user_email_hourly AS rollup
    USING (SELECT DISTINCT (timestamp_ms - ((timestamp_ms % 3600000) + 3600000) % 3600000) / 3600000 AS hour,
                           user_email, type, method, coalesce(status, -1) AS status
           FROM purged WHERE user_email IS NOT NULL) AS gone
    WHERE rollup.hour = gone.hour AND rollup.user_email = gone.user_email AND rollup.type = gone.type
      AND rollup.method = gone.method AND rollup.status = gone.status AND rollup.events = 0;
    RETURN NULL;
END
$$;

-- The zero rows earlier versions left behind.
DELETE FROM activity_hourly WHERE events = 0;
DELETE FROM activity_user_id_hourly WHERE events = 0;
DELETE FROM activity_user_email_hourly WHERE events = 0;
