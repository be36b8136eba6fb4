-- Home timelines (posterr/timelines.py keeps them in Redis; these read the truth they mirror).

-- name: fanout_followers :many
-- The followers of user_id, at most `limit`: who gets a new post pushed into their home timeline,
-- or, when an author crosses the fan-out limit, whose timelines are rebuilt (rule 2 and 6 of
-- posterr/timelines.py).
-- Index: follows_followee_created_idx (index-only).
SELECT follower_id
FROM follows
WHERE followee_id = %(user_id)s
LIMIT %(limit)s;

-- name: timeline_followees :many
-- The accounts user_id follows, each with whether its posts are merged in at read time (more than
-- fanout_max followers) rather than pushed into timelines at write time.
-- Index: follows_follower_created_idx, then users_pkey per followee.
SELECT f.followee_id, u.followers_count > %(fanout_max)s AS merged_at_read
FROM follows f
JOIN users u ON u.id = f.followee_id
WHERE f.follower_id = %(user_id)s;

-- name: page_by_authors_latest :many
-- Plan: per call
-- The newest posts of any of author_ids, after a keyset cursor on (created_at, id): at most `limit`
-- from each author (one index range each), merged and cut to `limit`; never a reply (home timelines
-- leave them out). Builds a home timeline (the authors that fan out), and merges the others into a page.
-- Index: posts_user_id_created_at_id_idx (a range per author).
SELECT p.id, p.created_at
FROM unnest(%(author_ids)s::bigint[]) AS a(id)
CROSS JOIN LATERAL (
    SELECT p.id, p.created_at
    FROM posts p
    WHERE p.user_id = a.id
      AND p.type <> 'reply'
      AND post_after_newest_first(p, %(after_created_at)s::timestamptz, %(after_id)s::bigint)
    ORDER BY p.created_at DESC, p.id DESC
    LIMIT %(limit)s
) p
ORDER BY p.created_at DESC, p.id DESC
LIMIT %(limit)s;
