-- migrate:up
-- The feed's optional filters, written once for the five page queries that take them (page_latest,
-- page_latest_scan, page_trending, page_followed_latest, page_followed_trending in
-- db/queries/posts.sql). A NULL argument turns its filter off. A one-expression SQL function is
-- inlined by the planner, and those queries are planned per call, with their values: each filter left
-- NULL folds away and the rest become plain conditions on posts, so the indexes serve them as before
-- (tests/integration/test_query_plans.py pins the plans).
CREATE FUNCTION post_passes_filters(p posts, author_id bigint, include_replies boolean, pattern text,
                                    since timestamptz, until timestamptz)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (author_id IS NULL OR p.user_id = author_id)
       AND (include_replies OR p.type <> 'reply')
       AND (pattern IS NULL OR (p.type <> 'repost' AND p.content ILIKE pattern))
       AND (since IS NULL OR p.created_at >= since)
       AND (until IS NULL OR p.created_at < until)
$$;

-- migrate:down
DROP FUNCTION post_passes_filters(posts, bigint, boolean, text, timestamptz, timestamptz);
