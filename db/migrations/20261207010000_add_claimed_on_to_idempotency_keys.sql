-- migrate:up
-- The server a claim was taken on, named by its postmaster's start time. A claim taken on a server
-- that has since restarted, or on a primary that failed over, belongs to a request whose connection
-- died with that server: a retry takes it over at once instead of after a minute. (A first request
-- that still lives cannot record its result then: the key is no longer its claim.)
ALTER TABLE idempotency_keys ADD COLUMN claimed_on timestamptz NOT NULL DEFAULT pg_postmaster_start_time();

-- migrate:down
ALTER TABLE idempotency_keys DROP COLUMN claimed_on;
