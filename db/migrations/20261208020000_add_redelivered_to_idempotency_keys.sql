-- migrate:up
-- Whether a replay has redone the creation's cache work (posterr/services/idempotency.py): the
-- first replay does, atomically claiming it here, and no later one, so replays cannot be used to
-- repeat a fan-out of a thousand pushes. A key taken over starts again with false.
ALTER TABLE idempotency_keys ADD COLUMN redelivered boolean NOT NULL DEFAULT false;

-- migrate:down
ALTER TABLE idempotency_keys DROP COLUMN redelivered;
