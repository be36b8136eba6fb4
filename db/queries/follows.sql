-- name: lock_users :many
-- Locks both ends of a follow in id order, so two opposite follows cannot deadlock; the rows
-- returned also tell which of the users exist, and how many followers each has.
-- Index: users_pkey.
SELECT id, followers_count
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

-- name: follow_list_page :many
-- One page of a user's followers or of the users they follow (list: 'followers' or 'following'),
-- newest follow first, before the keyset position (before_followed_at, before_id), which the caller
-- always sets (pagination.LATEST and validation.MAX_ID for the first page), so that the position is
-- a condition of the index walk and a deep page starts where it is, in one generic plan for both
-- lists (the view follow_lists, db/migrations/20261207060000_add_follow_lists.sql).
-- Index: follows_followee_created_idx (followers), follows_follower_created_idx (following), then
-- users_pkey per row.
SELECT u.id, u.username, u.created_at, u.posts_count, u.followers_count, u.following_count,
       l.followed_at
FROM follow_lists l
JOIN users u ON u.id = l.member_id
WHERE l.list = %(list)s::text AND l.owner_id = %(user_id)s::bigint
  AND (l.followed_at, l.member_id) < (%(before_followed_at)s::timestamptz, %(before_id)s::bigint)
ORDER BY l.followed_at DESC, l.member_id DESC
LIMIT %(limit)s;
