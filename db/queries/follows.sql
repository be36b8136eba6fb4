-- name: lock_users :many
-- Locks both ends of a follow in id order, so two opposite follows cannot deadlock; the rows
-- returned also tell which of the users exist.
-- Index: users_pkey.
SELECT id
FROM users
WHERE id IN (%(follower_id)s, %(followee_id)s)
ORDER BY id
FOR UPDATE;

-- name: insert_follow :one
-- Adds the follow and bumps both counters in one statement; nothing when it already exists.
-- Returns the followee's new follower count (NULL when nothing changed): crossing the fan-out
-- limit changes how their posts reach home timelines.
-- Index: follows_pkey (conflict), users_pkey (counters).
WITH inserted AS (
    INSERT INTO follows (follower_id, followee_id)
    VALUES (%(follower_id)s, %(followee_id)s)
    ON CONFLICT (follower_id, followee_id) DO NOTHING
    RETURNING follower_id, followee_id
), counted AS (
    UPDATE users u
    SET following_count = u.following_count + (u.id = i.follower_id)::int,
        followers_count = u.followers_count + (u.id = i.followee_id)::int
    FROM inserted i
    WHERE u.id IN (i.follower_id, i.followee_id)
    RETURNING u.id, u.followers_count
)
SELECT count(*) AS changed,
       max(followers_count) FILTER (WHERE id = %(followee_id)s) AS followee_followers
FROM counted;

-- name: delete_follow :one
-- Removes the follow and lowers both counters in one statement; nothing when there was none.
-- Index: follows_pkey (delete), users_pkey (counters).
WITH deleted AS (
    DELETE FROM follows
    WHERE follower_id = %(follower_id)s AND followee_id = %(followee_id)s
    RETURNING follower_id, followee_id
), counted AS (
    UPDATE users u
    SET following_count = u.following_count - (u.id = d.follower_id)::int,
        followers_count = u.followers_count - (u.id = d.followee_id)::int
    FROM deleted d
    WHERE u.id IN (d.follower_id, d.followee_id)
    RETURNING u.id
)
SELECT count(*) AS changed FROM counted;

-- name: follow_exists :one
-- Index: follows_pkey.
SELECT EXISTS (
    SELECT 1 FROM follows WHERE follower_id = %(follower_id)s AND followee_id = %(followee_id)s
) AS following;

-- name: followers_page :many
-- The users who follow user_id, newest follow first, after a keyset cursor.
-- Index: follows_followee_created_idx, then users_pkey per row.
SELECT u.id, u.username, u.created_at, u.posts_count, u.followers_count, u.following_count,
       f.created_at AS followed_at
FROM follows f
JOIN users u ON u.id = f.follower_id
WHERE f.followee_id = %(user_id)s
  AND (%(after_followed_at)s::timestamptz IS NULL
       OR (f.created_at, f.follower_id) < (%(after_followed_at)s, %(after_id)s::bigint))
ORDER BY f.created_at DESC, f.follower_id DESC
LIMIT %(limit)s;

-- name: following_page :many
-- The users whom user_id follows, newest follow first, after a keyset cursor.
-- Index: follows_follower_created_idx, then users_pkey per row.
SELECT u.id, u.username, u.created_at, u.posts_count, u.followers_count, u.following_count,
       f.created_at AS followed_at
FROM follows f
JOIN users u ON u.id = f.followee_id
WHERE f.follower_id = %(user_id)s
  AND (%(after_followed_at)s::timestamptz IS NULL
       OR (f.created_at, f.followee_id) < (%(after_followed_at)s, %(after_id)s::bigint))
ORDER BY f.created_at DESC, f.followee_id DESC
LIMIT %(limit)s;
