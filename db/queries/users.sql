-- name: insert_user :one
-- Index: users_username_lower_key (uniqueness that ignores case; a clash is a 409).
INSERT INTO users (username, password_hash)
VALUES (%(username)s, %(password_hash)s)
RETURNING id, username, created_at, posts_count, followers_count, following_count;

-- name: user_by_id :one
-- Index: users_pkey.
SELECT id, username, created_at, posts_count, followers_count, following_count
FROM users
WHERE id = %(id)s;

-- name: author_of_new_post :one
-- The author of a post being created, and the day (UTC) by the database's clock, which also gives
-- the post its created_at: the daily limit counts the post on the day it is dated. token_live: the
-- request's token (its digest; NULL for a legacy request without one) still writes for the author,
-- checked in the creation's own transaction at no extra round trip.
-- Index: users_pkey, api_tokens_digest_key (through write_tokens, inlined).
SELECT id, username, (now() AT TIME ZONE 'UTC')::date AS today,
       %(token_digest)s::bytea IS NULL OR EXISTS (SELECT FROM write_tokens(%(token_digest)s, id)) AS token_live
FROM users
WHERE id = %(id)s;

-- name: users_page :many
-- Users by id ascending after a keyset cursor, optionally the one with a username (any case).
-- Index: users_pkey (the page), users_username_lower_key (the lookup).
SELECT id, username, created_at, posts_count, followers_count, following_count
FROM users
WHERE (%(after_id)s::bigint IS NULL OR id > %(after_id)s)
  AND (%(username)s::text IS NULL OR lower(username) = lower(%(username)s))
ORDER BY id
LIMIT %(limit)s;

-- name: account_by_username :one
-- The account a login names (any case), with its password hash.
-- Index: users_username_lower_key.
SELECT id, username, password_hash
FROM users
WHERE lower(username) = lower(%(username)s);

-- name: set_password_hash :exec
-- A new password (the operators' `users set-password`), or the same one hashed with today's cost.
-- Index: users_pkey.
UPDATE users SET password_hash = %(password_hash)s
WHERE id = %(id)s;
