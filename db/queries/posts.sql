-- name: insert_post :one
-- Takes one unit of the author's daily quota and inserts the post in one statement: when the
-- quota is used up nothing is inserted (no row returned); when the insert fails (a second repost
-- of one post) the quota taken is rolled back with it. Counters are bumped in the same statement.
-- Index: post_quota_pkey (quota), posts_one_repost_per_user_key (one repost each), posts_pkey and
-- users_pkey (counters).
WITH quota AS (
    INSERT INTO post_quota AS q (user_id, day, used)
    VALUES (%(user_id)s, %(day)s, 1)
    ON CONFLICT (user_id, day) DO UPDATE SET used = q.used + 1
    WHERE q.used < %(daily_limit)s
    RETURNING q.used
), inserted AS (
    INSERT INTO posts (user_id, type, content, repost_id)
    SELECT %(user_id)s, %(type)s, %(content)s, %(repost_id)s FROM quota
    RETURNING id, user_id, type, repost_id
), author AS (
    UPDATE users SET posts_count = posts_count + 1
    FROM inserted i
    WHERE users.id = i.user_id
), target AS (
    UPDATE posts
    SET repost_count = posts.repost_count + (i.type = 'repost')::int,
        quote_count = posts.quote_count + (i.type = 'quote')::int
    FROM inserted i
    WHERE posts.id = i.repost_id
)
SELECT id FROM inserted;

-- name: quota_used :one
-- How many creations the user made on a UTC day (seeds the Redis counter).
-- Index: post_quota_pkey.
SELECT coalesce((SELECT used FROM post_quota WHERE user_id = %(user_id)s AND day = %(day)s), 0) AS used;

-- name: post_kind :one
-- The type of a post that is about to be reposted or quoted.
-- Index: posts_pkey.
SELECT id, type FROM posts WHERE id = %(id)s;

-- name: repost_exists :one
-- Index: posts_one_repost_per_user_key.
SELECT EXISTS (
    SELECT 1 FROM posts WHERE repost_id = %(repost_id)s AND user_id = %(user_id)s AND type = 'repost'
) AS reposted;

-- name: post_by_id :one
-- Index: posts_pkey (and users_pkey, posts_pkey for the joins in post_details).
SELECT id, user_id, username, type, content, repost_id, repost_count, quote_count, created_at,
       original_id, original_user_id, original_username, original_type, original_content,
       original_created_at
FROM post_details
WHERE id = %(id)s;

-- name: posts_latest :many
-- The feed, newest first, every filter optional (a NULL parameter disables its filter; custom
-- plans fold those away), after a keyset cursor on (created_at, id). followed_by: posts_followed_latest.
-- Index: posts_created_at_id_idx (global), posts_user_id_created_at_id_idx (author_id),
-- posts_content_trgm_idx (rare keywords); then post_details by posts_pkey.
WITH page AS (
    SELECT p.id
    FROM posts p
    WHERE (%(author_id)s::bigint IS NULL OR p.user_id = %(author_id)s)
      AND (%(pattern)s::text IS NULL OR (p.type <> 'repost' AND p.content ILIKE %(pattern)s))
      AND (%(since)s::timestamptz IS NULL OR p.created_at >= %(since)s)
      AND (%(until)s::timestamptz IS NULL OR p.created_at < %(until)s)
      AND (%(after_created_at)s::timestamptz IS NULL
           OR (p.created_at, p.id) < (%(after_created_at)s, %(after_id)s::bigint))
    ORDER BY p.created_at DESC, p.id DESC
    LIMIT %(limit)s
)
SELECT d.id, d.user_id, d.username, d.type, d.content, d.repost_id, d.repost_count, d.quote_count,
       d.created_at, d.original_id, d.original_user_id, d.original_username, d.original_type,
       d.original_content, d.original_created_at
FROM page
JOIN post_details d ON d.id = page.id
ORDER BY d.created_at DESC, d.id DESC;

-- name: posts_trending :many
-- The feed by (repost_count + quote_count) descending, then newest first; filters as in
-- posts_latest; keyset cursor on (score, created_at, id). followed_by: posts_followed_trending.
-- Index: posts_trending_idx (global), posts_user_id_created_at_id_idx (author_id, then a sort of
-- that user's posts only); then post_details by posts_pkey.
WITH page AS (
    SELECT p.id
    FROM posts p
    WHERE (%(author_id)s::bigint IS NULL OR p.user_id = %(author_id)s)
      AND (%(pattern)s::text IS NULL OR (p.type <> 'repost' AND p.content ILIKE %(pattern)s))
      AND (%(since)s::timestamptz IS NULL OR p.created_at >= %(since)s)
      AND (%(until)s::timestamptz IS NULL OR p.created_at < %(until)s)
      AND (%(after_created_at)s::timestamptz IS NULL
           OR ((p.repost_count + p.quote_count), p.created_at, p.id)
              < (%(after_score)s::integer, %(after_created_at)s, %(after_id)s::bigint))
    ORDER BY (p.repost_count + p.quote_count) DESC, p.created_at DESC, p.id DESC
    LIMIT %(limit)s
)
SELECT d.id, d.user_id, d.username, d.type, d.content, d.repost_id, d.repost_count, d.quote_count,
       d.created_at, d.original_id, d.original_user_id, d.original_username, d.original_type,
       d.original_content, d.original_created_at
FROM page
JOIN post_details d ON d.id = page.id
ORDER BY (d.repost_count + d.quote_count) DESC, d.created_at DESC, d.id DESC;

-- name: posts_followed_latest :many
-- The "Following" feed, newest first: for each user that followed_by follows, at most one page of
-- their newest posts (one index range each), merged and cut to a page. Its cost grows with the
-- number of followees, not with the size of posts. Other filters as in posts_latest.
-- Index: follows_follower_created_idx (the followees), posts_user_id_created_at_id_idx (a range per
-- followee); then post_details by posts_pkey.
WITH page AS (
    SELECT p.id, p.created_at
    FROM follows f
    CROSS JOIN LATERAL (
        SELECT p.id, p.created_at
        FROM posts p
        WHERE p.user_id = f.followee_id
          AND (%(author_id)s::bigint IS NULL OR p.user_id = %(author_id)s)
          AND (%(pattern)s::text IS NULL OR (p.type <> 'repost' AND p.content ILIKE %(pattern)s))
          AND (%(since)s::timestamptz IS NULL OR p.created_at >= %(since)s)
          AND (%(until)s::timestamptz IS NULL OR p.created_at < %(until)s)
          AND (%(after_created_at)s::timestamptz IS NULL
               OR (p.created_at, p.id) < (%(after_created_at)s, %(after_id)s::bigint))
        ORDER BY p.created_at DESC, p.id DESC
        LIMIT %(limit)s
    ) p
    WHERE f.follower_id = %(followed_by)s
    ORDER BY p.created_at DESC, p.id DESC
    LIMIT %(limit)s
)
SELECT d.id, d.user_id, d.username, d.type, d.content, d.repost_id, d.repost_count, d.quote_count,
       d.created_at, d.original_id, d.original_user_id, d.original_username, d.original_type,
       d.original_content, d.original_created_at
FROM page
JOIN post_details d ON d.id = page.id
ORDER BY d.created_at DESC, d.id DESC;

-- name: posts_followed_trending :many
-- The "Following" feed by (repost_count + quote_count) descending, then newest first: the posts of
-- the users that followed_by follows, sorted (a few thousand rows for a typical follow list).
-- Other filters and the keyset as in posts_trending.
-- Index: follows_follower_created_idx (the followees), posts_user_id_created_at_id_idx (each
-- followee's posts); then post_details by posts_pkey.
WITH page AS (
    SELECT p.id
    FROM follows f
    JOIN posts p ON p.user_id = f.followee_id
    WHERE f.follower_id = %(followed_by)s
      AND (%(author_id)s::bigint IS NULL OR p.user_id = %(author_id)s)
      AND (%(pattern)s::text IS NULL OR (p.type <> 'repost' AND p.content ILIKE %(pattern)s))
      AND (%(since)s::timestamptz IS NULL OR p.created_at >= %(since)s)
      AND (%(until)s::timestamptz IS NULL OR p.created_at < %(until)s)
      AND (%(after_created_at)s::timestamptz IS NULL
           OR ((p.repost_count + p.quote_count), p.created_at, p.id)
              < (%(after_score)s::integer, %(after_created_at)s, %(after_id)s::bigint))
    ORDER BY (p.repost_count + p.quote_count) DESC, p.created_at DESC, p.id DESC
    LIMIT %(limit)s
)
SELECT d.id, d.user_id, d.username, d.type, d.content, d.repost_id, d.repost_count, d.quote_count,
       d.created_at, d.original_id, d.original_user_id, d.original_username, d.original_type,
       d.original_content, d.original_created_at
FROM page
JOIN post_details d ON d.id = page.id
ORDER BY (d.repost_count + d.quote_count) DESC, d.created_at DESC, d.id DESC;
