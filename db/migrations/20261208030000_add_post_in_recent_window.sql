-- migrate:up
-- The window a keyword without a trigram is searched in (contract v2.1): the newest 100,000 posts,
-- that is the posts at or after the 100,000th newest one's (created_at, id), its "floor"
-- (recent_posts_floor in db/queries/posts.sql). Written once for the page queries that take a
-- keyword (page_latest, page_latest_scan, page_recent_latest, page_trending, page_recent_trending,
-- page_followed_latest, page_followed_trending). A NULL floor (any other keyword, or fewer posts
-- than the window) folds the condition away when a query is planned with its values, as in
-- post_after_newest_first; a floor becomes an index condition on the row (created_at, id), which posts_created_at_id_idx and
-- posts_user_id_created_at_id_idx serve, so a search reads no post older than the window.
CREATE FUNCTION post_in_recent_window(p posts, floor_created_at timestamptz, floor_id bigint)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT floor_created_at IS NULL OR (p.created_at, p.id) >= (floor_created_at, floor_id)
$$;

-- migrate:down
DROP FUNCTION post_in_recent_window(posts, timestamptz, bigint);
