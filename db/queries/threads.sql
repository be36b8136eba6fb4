-- name: replies_page :many
-- The ids of a post's direct replies, oldest first (created_at, then id), after a keyset cursor.
-- The cursor in coalesce form, so that one generic plan serves the first page and the others.
-- Index: posts_replies_idx.
SELECT p.id
FROM posts p
WHERE p.reply_to_id = %(post_id)s
  AND (p.created_at, p.id) > (coalesce(%(after_created_at)s::timestamptz, '-infinity'), coalesce(%(after_id)s::bigint, 0))
ORDER BY p.created_at, p.id
LIMIT %(limit)s;

-- name: thread_ancestors :many
-- The post itself (depth 0; no row when it does not exist), then the posts it answers, nearest
-- first (the API shows them root first), at most %(limit)s of them.
-- Index: posts_pkey, one lookup per step up.
WITH RECURSIVE up (id, reply_to_id, depth) AS (
    SELECT p.id, p.reply_to_id, 0 FROM posts p WHERE p.id = %(post_id)s
  UNION ALL
    SELECT parent.id, parent.reply_to_id, up.depth + 1
    FROM up JOIN posts parent ON parent.id = up.reply_to_id
    WHERE up.depth < %(limit)s
)
SELECT id, depth FROM up ORDER BY depth;

-- name: post_exists :one
-- Index: posts_pkey.
SELECT EXISTS (SELECT 1 FROM posts WHERE id = %(id)s) AS found;

-- name: thread_descendants :many
-- The ids of every reply under a post, depth first (after each post its own replies, oldest first,
-- each followed by its own), the first %(limit)s in that order. Each step down reads at most
-- %(limit)s replies of each post, and no branch goes deeper than %(limit)s: nothing past the first
-- %(limit)s can be needed. A reply's path is the ranks of it and its ancestors among their siblings
-- (below 32,768), two big-endian bytes each, so that sorting the paths as bytes is depth first and
-- building them costs little at any depth (numeric keys were slower on deep threads: docs/performance.md).
-- Index: posts_replies_idx, one range per post visited.
WITH RECURSIVE down (id, path) AS (
    SELECT c.id, int2send(c.rank::smallint)
    FROM (SELECT r.id, row_number() OVER (ORDER BY r.created_at, r.id) AS rank
          FROM (SELECT r.id, r.created_at FROM posts r WHERE r.reply_to_id = %(post_id)s
                ORDER BY r.created_at, r.id LIMIT %(limit)s) r) c
  UNION ALL
    SELECT c.id, down.path || int2send(c.rank::smallint)
    FROM down
    CROSS JOIN LATERAL (SELECT r.id, row_number() OVER (ORDER BY r.created_at, r.id) AS rank
                        FROM (SELECT r.id, r.created_at FROM posts r WHERE r.reply_to_id = down.id
                              ORDER BY r.created_at, r.id LIMIT %(limit)s) r) c
    WHERE length(down.path) < 2 * %(limit)s
)
SELECT id FROM down ORDER BY path LIMIT %(limit)s;
