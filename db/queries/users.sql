-- name: insert_user :one
-- Index: users_username_lower_key (uniqueness that ignores case; a clash is a 409).
INSERT INTO users (username)
VALUES (%(username)s)
RETURNING id, username, created_at, posts_count, followers_count, following_count;

-- name: user_by_id :one
-- Index: users_pkey.
SELECT id, username, created_at, posts_count, followers_count, following_count
FROM users
WHERE id = %(id)s;

-- name: author_of_new_post :one
-- The author of a post being created, and the day (UTC) by the database's clock, which also gives
-- the post its created_at: the daily limit counts the post on the day it is dated.
-- Index: users_pkey.
SELECT id, username, (now() AT TIME ZONE 'UTC')::date AS today
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
