-- name: search_segment_bounds :many
-- The sealed segments of post_search, newest first (the open segment starts where the first ends).
-- The oldest starts at -infinity (so a post of any age has a segment), given as NULL: no bound
-- (ordered by the column, not by that NULL, which would sort first).
-- Index: search_segments_pkey (a backward walk of a table of one row per segment).
SELECT nullif(starts_at, '-infinity') AS starts_at, ends_at FROM search_segments ORDER BY search_segments.starts_at DESC;

-- name: search_segments_page :many
-- Plan: per call (planned with its values, so the time range prunes post_search to its segments)
-- Keyword search, newest first, within one time range [since, until) (NULL: no bound) that the
-- service cuts along the segments of post_search (services/search.py): the matches that pass the
-- filters, after the keyset cursor, newest first. Each segment's trigram index gives all its matches,
-- which are sorted for the page; the service asks the newest range first and stops once a page is
-- full, so a rare word pays for its matches in the newest segments only. Never a repost (post_search
-- holds none).
-- Index: post_search_content_trgm_idx (each segment's own: post_search_N_content_idx, post_search_open's).
SELECT s.id
FROM post_search s
WHERE s.content ILIKE %(pattern)s
  AND (%(include_replies)s::boolean OR s.type <> 'reply')
  AND (%(since)s::timestamptz IS NULL OR s.created_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR s.created_at < %(until)s::timestamptz)
  AND (%(after_created_at)s::timestamptz IS NULL
       OR (s.created_at, s.id) < (%(after_created_at)s::timestamptz, %(after_id)s::bigint))
ORDER BY s.created_at DESC, s.id DESC
LIMIT %(limit)s;

-- name: search_trending_page :many
-- Plan: per call
-- Keyword search by (repost_count + quote_count) descending, then newest first, with the score (as
-- page_trending): every match in every segment counts, so no segment can be skipped. The scores
-- change, so they are read from posts, by key for each match (a join may hash all of posts); the
-- subquery is kept apart by OFFSET 0 so that each is read once. Filters as search_segments_page,
-- within the dates [since, until); an author's trending search stays on page_trending.
-- Index: post_search_content_trgm_idx (every segment's), then posts_pkey (each match's score).
SELECT matched.id, matched.score
FROM (
    SELECT s.id, s.created_at, (SELECT p.repost_count + p.quote_count FROM posts p WHERE p.id = s.id) AS score
    FROM post_search s
    WHERE s.content ILIKE %(pattern)s
      AND (%(include_replies)s::boolean OR s.type <> 'reply')
      AND (%(since)s::timestamptz IS NULL OR s.created_at >= %(since)s::timestamptz)
      AND (%(until)s::timestamptz IS NULL OR s.created_at < %(until)s::timestamptz)
    OFFSET 0
) AS matched
WHERE %(after_created_at)s::timestamptz IS NULL
   OR (matched.score, matched.created_at, matched.id)
      < (%(after_score)s::integer, %(after_created_at)s::timestamptz, %(after_id)s::bigint)
ORDER BY matched.score DESC, matched.created_at DESC, matched.id DESC
LIMIT %(limit)s;

-- name: seal_search_segments :one
-- The job each app process runs every minute (services/search.py): seals the open segment of
-- post_search once it holds a segment's worth of posts (seal_search_segments, a function of the
-- schema; a no-op while another process seals, or while the open segment is smaller).
-- Index: none (a count of at most a segment's worth of post_search_open, then a scan of it to attach it).
SELECT seal_search_segments() AS sealed;
