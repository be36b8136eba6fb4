-- name: insert_post :one
-- Takes one unit of the author's daily quota and inserts the post (of any type) in one statement: when the
-- quota is used up nothing is inserted (no row returned); when the insert fails (a second repost
-- of one post) the quota taken is rolled back with it. Counters are bumped in the same statement:
-- the author's posts_count, and the repost_count, quote_count or reply_count of the post it targets.
-- Returns the quota used so far today (with this post), for the Redis counter, and the author's
-- follower count as of the row lock taken here (whether the post is pushed to home timelines).
-- Index: post_quota_pkey (quota), posts_one_repost_per_user_key (one repost each), posts_pkey and
-- users_pkey (counters).
WITH quota AS (
    INSERT INTO post_quota AS q (user_id, day, used)
    VALUES (%(user_id)s, %(day)s, 1)
    ON CONFLICT (user_id, day) DO UPDATE SET used = q.used + 1
    WHERE q.used < %(daily_limit)s
    RETURNING q.used
), inserted AS (
    INSERT INTO posts (user_id, type, content, repost_id, reply_to_id)
    SELECT %(user_id)s, %(type)s, %(content)s, %(repost_id)s, %(reply_to_id)s FROM quota
    RETURNING id, user_id, type, repost_id, reply_to_id, created_at
), author AS (
    UPDATE users SET posts_count = posts_count + 1
    FROM inserted i
    WHERE users.id = i.user_id
    RETURNING users.followers_count
), target AS (
    UPDATE posts
    SET repost_count = posts.repost_count + (i.type = 'repost')::int,
        quote_count = posts.quote_count + (i.type = 'quote')::int,
        reply_count = posts.reply_count + (i.type = 'reply')::int
    FROM inserted i
    WHERE posts.id = coalesce(i.repost_id, i.reply_to_id)
)
SELECT i.id, i.created_at, q.used, a.followers_count FROM inserted i CROSS JOIN quota q CROSS JOIN author a;

-- name: repost_exists :one
-- Index: posts_one_repost_per_user_key.
SELECT EXISTS (
    SELECT 1 FROM posts WHERE repost_id = %(repost_id)s AND user_id = %(user_id)s AND type = 'repost'
) AS reposted;

-- name: posts_by_ids :many
-- The posts of a feed page, in any order (the caller keeps the page's order).
-- Index: posts_pkey (and users_pkey, posts_pkey for the joins in post_details).
SELECT id, user_id, username, type, content, repost_id, repost_count, quote_count, created_at,
       original_id, original_user_id, original_username, original_type, original_content,
       original_created_at, reply_to_id, reply_count, reply_to_user_id, reply_to_username
FROM post_details
WHERE id = ANY(%(ids)s);

-- name: post_by_id :one
-- Index: posts_pkey (and users_pkey, posts_pkey for the joins in post_details).
SELECT id, user_id, username, type, content, repost_id, repost_count, quote_count, created_at,
       original_id, original_user_id, original_username, original_type, original_content,
       original_created_at, reply_to_id, reply_count, reply_to_user_id, reply_to_username
FROM post_details
WHERE id = %(id)s;

-- name: posts_page_latest :many
-- One page of a feed without filters, newest first, as post objects, in one prepared statement: the
-- global feed (feed 0) or an author's (feed = their id), from the view feed_posts. Posts created at or
-- after `since` and before the keyset position (before_created_at, before_id), which the caller takes
-- as the earlier of the cursor and the end of the date range (an unset bound is an infinite one), so
-- that one generic plan serves every page of both feeds. The inner LIMIT is a constant, the most a page
-- reads (MAX_LIMIT + 1): PostgreSQL costs a LIMIT parameter at a tenth of the rows, and a generic plan
-- made for that many rows hashes or memoizes whole tables; the outer LIMIT stops the inner scan after
-- `limit` rows all the same, and only those are joined with their details.
-- Index: posts_created_at_id_idx (global), posts_user_id_created_at_id_idx (an author's), then
-- posts_pkey and users_pkey (post_details).
SELECT d.id, d.user_id, d.username, d.type, d.content, d.repost_id, d.repost_count, d.quote_count, d.created_at,
       d.original_id, d.original_user_id, d.original_username, d.original_type, d.original_content,
       d.original_created_at, d.reply_to_id, d.reply_count, d.reply_to_user_id, d.reply_to_username
FROM (
    SELECT f.id, f.created_at FROM feed_posts f
    WHERE f.feed = %(feed)s::bigint
      AND f.created_at >= %(since)s::timestamptz
      AND (f.created_at, f.id) < (%(before_created_at)s::timestamptz, %(before_id)s::bigint)
      AND (%(include_replies)s::boolean OR f.type <> 'reply')
    ORDER BY f.created_at DESC, f.id DESC LIMIT 101
) page
JOIN post_details d ON d.id = page.id
ORDER BY page.created_at DESC, page.id DESC
LIMIT %(limit)s;

-- name: posts_page_trending :many
-- One page of a feed without filters by (repost_count + quote_count) descending, then newest first, as
-- post objects, with the score it was ordered by: the global feed or an author's, as
-- posts_page_latest, after the keyset position (before_score, before_created_at, before_id), infinite
-- when unset; one generic plan, as posts_page_latest. A trending page within dates is page_trending's.
-- Index: posts_trending_idx (global), posts_user_trending_idx (an author's), then posts_pkey and
-- users_pkey (post_details).
SELECT d.id, d.user_id, d.username, d.type, d.content, d.repost_id, d.repost_count, d.quote_count, d.created_at,
       d.original_id, d.original_user_id, d.original_username, d.original_type, d.original_content,
       d.original_created_at, d.reply_to_id, d.reply_count, d.reply_to_user_id, d.reply_to_username,
       page.score
FROM (
    SELECT f.id, f.score, f.created_at FROM feed_posts f
    WHERE f.feed = %(feed)s::bigint
      AND (f.score, f.created_at, f.id)
          < (%(before_score)s::integer, %(before_created_at)s::timestamptz, %(before_id)s::bigint)
      AND (%(include_replies)s::boolean OR f.type <> 'reply')
    ORDER BY f.score DESC, f.created_at DESC, f.id DESC LIMIT 101
) page
JOIN post_details d ON d.id = page.id
ORDER BY page.score DESC, page.created_at DESC, page.id DESC
LIMIT %(limit)s;

-- name: page_latest :many
-- Plan: per call (planned with the values, so each filter left NULL folds away)
-- The ids of one feed page (posts_by_ids reads the posts), newest first, every filter optional
-- (a NULL parameter disables it: post_passes_filters, a function of the schema that the planner
-- inlines), replies only when include_replies, after a keyset cursor on (created_at, id), and for a
-- keyword without a trigram at or after the floor of the newest posts (post_in_recent_window; NULL
-- for any other). For followed_by: page_followed_latest.
-- A keyword is searched here by an author only (services/search.py): other keyword searches read
-- post_search's segments (db/queries/search.sql).
-- Index: posts_created_at_id_idx (global, and a keyword without a trigram: a walk that stops at the
-- floor), posts_user_id_created_at_id_idx (author_id).
SELECT p.id
FROM posts p
WHERE post_passes_filters(p, %(author_id)s::bigint, %(include_replies)s::boolean, %(pattern)s::text,
                          %(since)s::timestamptz, %(until)s::timestamptz)
  AND post_after_newest_first(p, %(after_created_at)s::timestamptz, %(after_id)s::bigint)
  AND post_in_recent_window(p, %(floor_created_at)s::timestamptz, %(floor_id)s::bigint)
ORDER BY p.created_at DESC, p.id DESC
LIMIT %(limit)s;

-- name: page_latest_scan :many
-- Plan: per call
-- Keyword search, first tries: the keyword among the newest `scan` posts that pass the other filters
-- (one walk down posts_created_at_id_idx that stops at the page's last match). Common and medium
-- words fill the page here; when they do not, search_segments_page (the trigram index of each time
-- segment, newest first) finds the rare ones. PostgreSQL cannot tell how common a word is, so the
-- service decides from what a short walk found (posterr/services/search.py, next_walk).
-- A keyword without a trigram (contract v2.1) walks here too, unbounded: the page stands when its last
-- post is among the newest posts of the window (posts_newer_than); else page_recent_latest reads
-- the window. created_at is that check's.
-- Index: posts_created_at_id_idx (global), posts_user_id_created_at_id_idx (author_id).
SELECT recent.id, recent.created_at
FROM (
    SELECT p.id, p.created_at, p.type, p.content
    FROM posts p
    WHERE post_passes_filters(p, %(author_id)s::bigint, %(include_replies)s::boolean, NULL,
                              %(since)s::timestamptz, %(until)s::timestamptz)
      AND post_after_newest_first(p, %(after_created_at)s::timestamptz, %(after_id)s::bigint)
      AND post_in_recent_window(p, %(floor_created_at)s::timestamptz, %(floor_id)s::bigint)
    ORDER BY p.created_at DESC, p.id DESC
    LIMIT %(scan)s
) recent
WHERE recent.type <> 'repost' AND recent.content ILIKE %(pattern)s
ORDER BY recent.created_at DESC, recent.id DESC
LIMIT %(limit)s;

-- name: page_recent_latest :many
-- Plan: per call
-- A keyword without a trigram (contract v2.1) that the walks of page_latest_scan did not find a page
-- of: its matches among the posts at or after the floor of the newest posts (recent_posts_floor)
-- that pass the other filters, newest first. The window is read whole, the cheapest way (a bitmap of
-- its index range, or the range in order), and only the page's ids are sorted (a top-N sort of a few
-- columns). The keyword is matched outside the subquery, which OFFSET 0 keeps apart: otherwise the
-- planner may hand the keyword to the trigram index, which has nothing to look up for it or only a
-- padded trigram (`a.b` gives "  b": any word starting with b, in posts of every age).
-- Index: posts_created_at_id_idx (global), posts_user_id_created_at_id_idx (author_id), each from the floor.
SELECT recent.id
FROM (
    SELECT p.id, p.created_at, p.type, p.content
    FROM posts p
    WHERE post_passes_filters(p, %(author_id)s::bigint, %(include_replies)s::boolean, NULL,
                              %(since)s::timestamptz, %(until)s::timestamptz)
      AND post_after_newest_first(p, %(after_created_at)s::timestamptz, %(after_id)s::bigint)
      AND post_in_recent_window(p, %(floor_created_at)s::timestamptz, %(floor_id)s::bigint)
    OFFSET 0
) recent
WHERE recent.type <> 'repost' AND recent.content ILIKE %(pattern)s
ORDER BY recent.created_at DESC, recent.id DESC
LIMIT %(limit)s;

-- name: page_recent_trending :many
-- Plan: per call
-- A keyword without a trigram (contract v2.1) by trending: its matches among the posts at or after
-- the floor of the newest posts (recent_posts_floor) that pass the other filters, after the cursor,
-- by (repost_count + quote_count) descending, then newest first, with the score (as page_trending).
-- The window is read whole as in page_recent_latest, the subquery kept apart by OFFSET 0 for the
-- same reason and one more: planned as one query with the floor, PostgreSQL may walk
-- posts_trending_idx in score order, through the posts of every age that have a score, before the
-- first match within the window. So the cursor is outside too (post_after_trending's condition,
-- written out for the subquery's columns).
-- Index: posts_created_at_id_idx (global), posts_user_id_created_at_id_idx (author_id), each from the floor.
SELECT recent.id, recent.score
FROM (
    SELECT p.id, p.repost_count + p.quote_count AS score, p.created_at, p.type, p.content
    FROM posts p
    WHERE post_passes_filters(p, %(author_id)s::bigint, %(include_replies)s::boolean, NULL,
                              %(since)s::timestamptz, %(until)s::timestamptz)
      AND post_in_recent_window(p, %(floor_created_at)s::timestamptz, %(floor_id)s::bigint)
    OFFSET 0
) recent
WHERE recent.type <> 'repost' AND recent.content ILIKE %(pattern)s
  AND (%(after_created_at)s::timestamptz IS NULL
       OR (recent.score, recent.created_at, recent.id)
          < (%(after_score)s::integer, %(after_created_at)s::timestamptz, %(after_id)s::bigint))
ORDER BY recent.score DESC, recent.created_at DESC, recent.id DESC
LIMIT %(limit)s;

-- name: posts_estimate :one
-- PostgreSQL's own estimate of the number of posts (from the last ANALYZE): no table is read.
-- Index: pg_class_oid_index.
SELECT greatest(reltuples, 0)::bigint AS posts FROM pg_class WHERE oid = 'posts'::regclass;

-- name: recent_posts_floor :one
-- Plan: prepared (one walk whatever the values)
-- The floor of the window a keyword without a trigram is searched in (contract v2.1): the
-- (created_at, id) of the `window`-th newest post of every type, in the index's own order, so that
-- the posts at or after it are exactly the newest `window` (ties in created_at are broken by id, as
-- the feed breaks them). No row when there are fewer posts: every post is in the window. The page
-- queries take it as floor_created_at, floor_id (post_in_recent_window, a function of the schema).
-- A walk of `window` index entries without a heap read (on an all-visible table), far cheaper than the
-- window's ILIKE that follows; read afresh on each search, so the window is the newest posts of the
-- moment (a post made between the two statements is newer than the floor, and searched too).
-- Index: posts_created_at_id_idx (an index-only scan, backward).
SELECT created_at, id
FROM posts
ORDER BY created_at DESC, id DESC
OFFSET %(window)s - 1
LIMIT 1;

-- name: posts_newer_than :one
-- Plan: prepared (one walk whatever the values)
-- How many posts of every type are newer than (created_at, id) in the feed's order, counting to
-- `most` at most: whether a post is among the newest `most` (fewer than `most` are newer), which
-- for a page a walk found near the top is far cheaper than reading the `most`-th newest post
-- (recent_posts_floor).
-- Index: posts_created_at_id_idx (an index-only scan, backward, to the post).
SELECT count(*) AS newer
FROM (
    SELECT FROM posts
    WHERE (created_at, id) > (%(created_at)s::timestamptz, %(id)s::bigint)
    ORDER BY created_at DESC, id DESC
    LIMIT %(most)s
) AS newer_posts;

-- name: page_trending :many
-- Plan: per call
-- The ids of one feed page by (repost_count + quote_count) descending, then newest first, with the
-- score they were ordered by (the next page's cursor must come from the same snapshot as the order);
-- filters as in page_latest; keyset cursor on (score, created_at, id). For followed_by: page_followed_trending.
-- Index: posts_trending_idx (global), posts_user_id_created_at_id_idx (author_id, then a sort of
-- that user's posts only).
SELECT p.id, p.repost_count + p.quote_count AS score
FROM posts p
WHERE post_passes_filters(p, %(author_id)s::bigint, %(include_replies)s::boolean, %(pattern)s::text,
                          %(since)s::timestamptz, %(until)s::timestamptz)
  AND post_after_trending(p, %(after_score)s::integer, %(after_created_at)s::timestamptz, %(after_id)s::bigint)
  AND post_in_recent_window(p, %(floor_created_at)s::timestamptz, %(floor_id)s::bigint)
ORDER BY (p.repost_count + p.quote_count) DESC, p.created_at DESC, p.id DESC
LIMIT %(limit)s;

-- name: page_followed_latest :many
-- Plan: per call
-- The ids of one page of the "Following" feed, newest first: for each user that followed_by
-- follows, at most one page of their newest posts (one index range each), merged and cut to a
-- page. Its cost grows with the number of followees, not with the size of posts. Other filters as
-- in page_latest.
-- Index: follows_follower_created_idx (the followees), posts_user_id_created_at_id_idx (a range per
-- followee).
SELECT p.id, p.created_at
FROM follows f
CROSS JOIN LATERAL (
    SELECT p.id, p.created_at
    FROM posts p
    WHERE p.user_id = f.followee_id
      AND post_passes_filters(p, %(author_id)s::bigint, %(include_replies)s::boolean, %(pattern)s::text,
                              %(since)s::timestamptz, %(until)s::timestamptz)
      AND post_after_newest_first(p, %(after_created_at)s::timestamptz, %(after_id)s::bigint)
      AND post_in_recent_window(p, %(floor_created_at)s::timestamptz, %(floor_id)s::bigint)
    ORDER BY p.created_at DESC, p.id DESC
    LIMIT %(limit)s
) p
WHERE f.follower_id = %(followed_by)s
ORDER BY p.created_at DESC, p.id DESC
LIMIT %(limit)s;

-- name: page_followed_trending :many
-- Plan: per call
-- The ids of one page of the "Following" feed by (repost_count + quote_count) descending, then
-- newest first: for each user that followed_by follows, at most one page of their top posts by
-- that order (one index range each), merged and cut to a page; no followee's posts are sorted.
-- Other filters, the keyset and the score returned as in page_trending.
-- Index: follows_follower_created_idx (the followees), posts_user_trending_idx (a range per
-- followee).
SELECT p.id, p.score
FROM follows f
CROSS JOIN LATERAL (
    SELECT p.id, p.repost_count + p.quote_count AS score, p.created_at
    FROM posts p
    WHERE p.user_id = f.followee_id
      AND post_passes_filters(p, %(author_id)s::bigint, %(include_replies)s::boolean, %(pattern)s::text,
                              %(since)s::timestamptz, %(until)s::timestamptz)
      AND post_after_trending(p, %(after_score)s::integer, %(after_created_at)s::timestamptz, %(after_id)s::bigint)
      AND post_in_recent_window(p, %(floor_created_at)s::timestamptz, %(floor_id)s::bigint)
    ORDER BY (p.repost_count + p.quote_count) DESC, p.created_at DESC, p.id DESC
    LIMIT %(limit)s
) p
WHERE f.follower_id = %(followed_by)s
ORDER BY p.score DESC, p.created_at DESC, p.id DESC
LIMIT %(limit)s;
