-- migrate:up
-- Where a feed page lies, written once for the queries that share it. First, the window of the
-- one-statement pages (posts_page_latest and author_posts_page_latest; posts_page_trending and
-- author_posts_page_trending in db/queries/posts.sql). Like post_passes_filters, each function is
-- one expression that the planner inlines, so the index conditions are the same as written out: the
-- row comparison on (created_at, id), or on (score, created_at, id), is what
-- posts_created_at_id_idx, posts_user_id_created_at_id_idx, posts_trending_idx and
-- posts_user_trending_idx serve (tests/integration/test_query_plans.py pins the plans).
CREATE FUNCTION post_in_newest_first_window(p posts, since timestamptz, before_created_at timestamptz,
                                            before_id bigint, include_replies boolean)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p.created_at >= since
       AND (p.created_at, p.id) < (before_created_at, before_id)
       AND (include_replies OR p.type <> 'reply')
$$;

CREATE FUNCTION post_in_trending_window(p posts, before_score integer, before_created_at timestamptz,
                                        before_id bigint, include_replies boolean)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT ((p.repost_count + p.quote_count), p.created_at, p.id) < (before_score, before_created_at, before_id)
       AND (include_replies OR p.type <> 'reply')
$$;

-- The keyset of the pages planned per call (page_latest, page_latest_scan, page_followed_latest and
-- page_by_authors_latest; page_trending, page_followed_trending): after the cursor's position, or anywhere without one (a
-- NULL after_created_at folds the condition away when the query is planned with its values).
CREATE FUNCTION post_after_newest_first(p posts, after_created_at timestamptz, after_id bigint)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT after_created_at IS NULL OR (p.created_at, p.id) < (after_created_at, after_id)
$$;

CREATE FUNCTION post_after_trending(p posts, after_score integer, after_created_at timestamptz, after_id bigint)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT after_created_at IS NULL
        OR ((p.repost_count + p.quote_count), p.created_at, p.id) < (after_score, after_created_at, after_id)
$$;

-- migrate:down
DROP FUNCTION post_after_trending(posts, integer, timestamptz, bigint);
DROP FUNCTION post_after_newest_first(posts, timestamptz, bigint);
DROP FUNCTION post_in_trending_window(posts, integer, timestamptz, bigint, boolean);
DROP FUNCTION post_in_newest_first_window(posts, timestamptz, timestamptz, bigint, boolean);
