-- Version 7 of the PostgreSQL schema: `user_name` becomes a plain column that ingest fills
-- from the event it has already parsed, like `user_id`, instead of one generated from the
-- body (version 6), which parsed every body again as it was sealed. DROP EXPRESSION keeps
-- the values and the `(user_name, seq)` index. Events acknowledged but not yet sealed carry
-- theirs from ingest too; those waiting at the upgrade take it from their body once.
ALTER TABLE events ALTER COLUMN user_name DROP EXPRESSION;
ALTER TABLE unsequenced ADD COLUMN user_name TEXT;
UPDATE unsequenced SET user_name = (body::jsonb) ->> 'user_name';
