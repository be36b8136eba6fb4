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
-- %(limit)s can be needed. The path of (created_at µs, id) keys, one number per level, sorts depth first.
-- Index: posts_replies_idx, one range per post visited.
WITH RECURSIVE down (id, path) AS (
    SELECT c.id, ARRAY[(extract(epoch FROM c.created_at) * 1000000) * 10000000000000000000 + c.id]
    FROM (SELECT r.id, r.created_at FROM posts r WHERE r.reply_to_id = %(post_id)s
          ORDER BY r.created_at, r.id LIMIT %(limit)s) c
  UNION ALL
    SELECT c.id, down.path || ((extract(epoch FROM c.created_at) * 1000000) * 10000000000000000000 + c.id)
    FROM down
    CROSS JOIN LATERAL (SELECT r.id, r.created_at FROM posts r WHERE r.reply_to_id = down.id
                        ORDER BY r.created_at, r.id LIMIT %(limit)s) c
    WHERE cardinality(down.path) < %(limit)s
)
SELECT id FROM down ORDER BY path LIMIT %(limit)s;
