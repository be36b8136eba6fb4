-- migrate:up
-- Every post in the two feeds it stands in without a filter: the global feed (feed 0) and its author's
-- feed (feed = the author's id; ids start at 1). One prepared statement per order reads a page of
-- either (posts_page_latest, posts_page_trending in db/queries/posts.sql): the planner pushes its
-- conditions into both branches, so in the one generic plan each feed walks its own index in order
-- (posts_created_at_id_idx or posts_trending_idx for the global feed, posts_user_id_created_at_id_idx
-- or posts_user_trending_idx for an author's), merged by a Merge Append; the global branch is skipped
-- by a one-time filter when an author is asked for, and the author branch finds no user 0
-- (tests/integration/test_query_plans.py pins the plans). score is the trending order's first key,
-- the same expression as the two trending indexes.
CREATE VIEW feed_posts (feed, id, type, created_at, score) AS
    SELECT 0::bigint, id, type, created_at, repost_count + quote_count FROM posts
    UNION ALL
    SELECT user_id, id, type, created_at, repost_count + quote_count FROM posts;

-- The one-statement pages' windows, which the global and author variants of those pages shared, are
-- now written once in each page over feed_posts.
DROP FUNCTION post_in_trending_window(posts, integer, timestamptz, bigint, boolean);
DROP FUNCTION post_in_newest_first_window(posts, timestamptz, timestamptz, bigint, boolean);

-- migrate:down
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

DROP VIEW feed_posts;
