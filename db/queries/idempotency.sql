-- name: claim_idempotency_key :one
-- Claims a key for a first request (a record with status NULL; claimed = true); a record older
-- than 24 hours, or a claim whose request died without releasing it (running for over a
-- minute: the request timeout is 30 s; or taken on a server process that is gone, a restart or a
-- fail-over since: `claimed_on`), is taken over as if it were not there; `claim` names the
-- request that holds it. When the key is held, returns that record (claimed = false), and whether
-- the request's token (its digest; NULL without one) still writes for the user: a replay is an
-- acknowledgement too, so a revoked token gets none. No row at all means a concurrent claim
-- committed meanwhile: ask again.
-- Index: idempotency_keys_pkey, api_tokens_digest_key (through write_tokens, inlined).
WITH claimed AS (
    INSERT INTO idempotency_keys AS k (scope, user_id, key, fingerprint, claim)
    VALUES (%(scope)s, %(user_id)s, %(key)s, %(fingerprint)s, %(claim)s)
    ON CONFLICT (scope, user_id, key) DO UPDATE
    SET fingerprint = excluded.fingerprint, claim = excluded.claim, status = NULL, location = NULL, body = NULL,
        created_at = now(), claimed_on = excluded.claimed_on, redelivered = false
    WHERE k.created_at < now() - interval '24 hours'
       OR (k.status IS NULL AND (k.created_at < now() - interval '1 minute'
                                 OR k.claimed_on <> pg_postmaster_start_time()))
    RETURNING k.fingerprint, k.status, k.location, k.body, true AS claimed
)
SELECT fingerprint, status, location, body, claimed, true AS token_live FROM claimed
UNION ALL
SELECT fingerprint, status, location, body, false AS claimed,
       %(token_digest)s::bytea IS NULL OR EXISTS (SELECT FROM write_tokens(%(token_digest)s, %(user_id)s)) AS token_live
FROM idempotency_keys
WHERE scope = %(scope)s AND user_id = %(user_id)s AND key = %(key)s
  AND NOT EXISTS (SELECT 1 FROM claimed);

-- name: redelivery_claim :one
-- The right to redo a completed creation's cache work, taken by the first replay of its key and by
-- no other (no row: already taken).
-- Index: idempotency_keys_pkey.
UPDATE idempotency_keys
SET redelivered = true
WHERE scope = %(scope)s AND user_id = %(user_id)s AND key = %(key)s AND status IS NOT NULL AND NOT redelivered
RETURNING true AS claimed;

-- name: complete_idempotency_key :one
-- Records the result, if the key is still this request's claim (no row: another request took it over).
-- Index: idempotency_keys_pkey.
UPDATE idempotency_keys
SET status = %(status)s, location = %(location)s, body = %(body)s
WHERE scope = %(scope)s AND user_id = %(user_id)s AND key = %(key)s AND claim = %(claim)s AND status IS NULL
RETURNING claim;

-- name: release_idempotency_key :exec
-- The first request failed: forget the key so that a retry can run (if it is still this request's).
-- Index: idempotency_keys_pkey.
DELETE FROM idempotency_keys
WHERE scope = %(scope)s AND user_id = %(user_id)s AND key = %(key)s AND claim = %(claim)s AND status IS NULL;

-- name: delete_expired_idempotency_keys :exec
-- A bounded batch, run now and then by the app (see services/idempotency.py).
-- Index: idempotency_keys_created_at_idx.
DELETE FROM idempotency_keys
WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM idempotency_keys
    WHERE created_at < now() - interval '24 hours'
    LIMIT 1000
));
