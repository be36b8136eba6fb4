-- migrate:up
-- Idempotency-Key records of create requests: claimed (status NULL) while the first request runs,
-- completed with the response it gave (only 201s are kept), dropped after 24 hours.
CREATE TABLE idempotency_keys (
    scope       text NOT NULL,             -- the route, e.g. 'POST /api/posts'
    user_id     bigint NOT NULL,           -- the acting user; 0 for POST /api/users
    key         text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    fingerprint text NOT NULL,             -- sha256 of the request body as canonical JSON
    status      integer,                   -- NULL while the first request is running
    location    text,
    body        bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, user_id, key)
);

-- Finds expired records for the clean-up.
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);

-- migrate:down
DROP TABLE idempotency_keys;
