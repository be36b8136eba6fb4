-- migrate:up
-- Which request holds the key: a request that stalled past its claim's expiry, while a retry took
-- the key over, must neither record its result nor release the key (services/idempotency.py).
ALTER TABLE idempotency_keys ADD COLUMN claim bigint NOT NULL DEFAULT 0;

-- migrate:down
ALTER TABLE idempotency_keys DROP COLUMN claim;
