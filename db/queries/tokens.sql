-- name: insert_token :one
-- Index: api_tokens_digest_key (a digest is unique), api_tokens_pkey.
INSERT INTO api_tokens (user_id, digest, hint, scopes, name, expires_at)
VALUES (%(user_id)s, %(digest)s, %(hint)s, %(scopes)s, %(token_name)s,
        now() + make_interval(secs => %(expires_in)s::integer))
RETURNING id, scopes, name, created_at, expires_at;

-- name: live_token :one
-- The live (not revoked, not expired) token with this digest, for the request that carries it.
-- Index: api_tokens_digest_key.
SELECT id, user_id, scopes
FROM api_tokens
WHERE digest = %(digest)s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now());

-- name: touch_tokens :exec
-- last_used_at of many tokens at once, each to the minute it was last used (posterr/token_uses.py:
-- each process writes its batch every few seconds, not a row per request). Its commit does not wait
-- for a synchronous standby (set_config, local to this statement's own transaction, evaluated for
-- the rows it updates): losing it in a fail-over harms nothing, and it never stalls.
-- Index: api_tokens_pkey.
UPDATE api_tokens t SET last_used_at = used.minute
FROM unnest(%(ids)s::bigint[], %(minutes)s::timestamptz[]) AS used (id, minute)
WHERE t.id = used.id AND (t.last_used_at IS NULL OR t.last_used_at < used.minute)
  AND set_config('synchronous_commit', 'local', true) IS NOT NULL;

-- name: write_token_is_live :one
-- Whether the token still writes for the user, checked inside a write's own transaction.
-- Index: api_tokens_digest_key (through write_tokens, inlined).
SELECT EXISTS (SELECT FROM write_tokens(%(digest)s, %(user_id)s)) AS live;

-- name: tokens_page :many
-- A user's live tokens, newest first, from a keyset position (the first page: past every row).
-- Index: api_tokens_user_id_created_at_id_idx.
SELECT id, name, scopes, created_at, expires_at, last_used_at, hint
FROM api_tokens
WHERE user_id = %(user_id)s AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
  AND (created_at, id) < (%(before_created_at)s, %(before_id)s)
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s;

-- name: revoke_token :one
-- Revokes one live token of the user (of anyone's, for an operator: user_id NULL); no row: there is
-- no such live token of theirs.
-- Index: api_tokens_pkey.
UPDATE api_tokens SET revoked_at = now()
WHERE id = %(id)s AND (%(user_id)s::bigint IS NULL OR user_id = %(user_id)s) AND revoked_at IS NULL
  AND (expires_at IS NULL OR expires_at > now())
RETURNING id, user_id;

-- name: revoke_user_tokens :one
-- Revokes every live token of a user at once (the operators' `tokens revoke --user`).
-- Index: api_tokens_user_id_created_at_id_idx.
WITH revoked AS (
    UPDATE api_tokens SET revoked_at = now()
    WHERE user_id = %(user_id)s AND revoked_at IS NULL
    RETURNING id
)
SELECT count(*) AS revoked FROM revoked;
