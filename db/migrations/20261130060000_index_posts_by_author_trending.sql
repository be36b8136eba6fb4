-- migrate:up
-- The trending order of the "Following" feed takes the top of each followee's posts by score
-- instead of sorting all of their posts (page_followed_trending).
CREATE INDEX posts_user_trending_idx ON posts (user_id, (repost_count + quote_count) DESC, created_at DESC, id DESC);

-- migrate:down
DROP INDEX posts_user_trending_idx;
