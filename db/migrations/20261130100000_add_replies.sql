-- migrate:up
-- Replies (API v1.1): a reply answers another post (reply_to_id) and replies form threads. The
-- shape of each type is checked here, as for posts, reposts and quotes: a reply has content and
-- a post it answers, nothing it reposts. reply_count, like repost_count, is kept by the statement
-- that inserts the reply.
ALTER TABLE posts
    ADD COLUMN reply_to_id bigint REFERENCES posts (id),
    ADD COLUMN reply_count integer NOT NULL DEFAULT 0 CONSTRAINT posts_reply_count_check CHECK (reply_count >= 0),
    DROP CONSTRAINT posts_type_known,
    DROP CONSTRAINT posts_shape,
    ADD CONSTRAINT posts_type_known CHECK (type IN ('post', 'repost', 'quote', 'reply')),
    ADD CONSTRAINT posts_shape CHECK (
        (type = 'post' AND repost_id IS NULL AND reply_to_id IS NULL AND content IS NOT NULL)
        OR (type = 'repost' AND repost_id IS NOT NULL AND reply_to_id IS NULL AND content IS NULL)
        OR (type = 'quote' AND repost_id IS NOT NULL AND reply_to_id IS NULL AND content IS NOT NULL)
        OR (type = 'reply' AND repost_id IS NULL AND reply_to_id IS NOT NULL AND content IS NOT NULL));
-- A post's direct replies, oldest first: GET /api/posts/{id}/replies, and every step down a thread
-- (a post's context). Partial: most posts answer nothing.
CREATE INDEX posts_replies_idx ON posts (reply_to_id, created_at, id) WHERE reply_to_id IS NOT NULL;

-- migrate:down
DROP INDEX posts_replies_idx;
DELETE FROM posts WHERE type = 'reply';
ALTER TABLE posts
    DROP CONSTRAINT posts_shape,
    DROP CONSTRAINT posts_type_known,
    DROP COLUMN reply_count,
    DROP COLUMN reply_to_id,
    ADD CONSTRAINT posts_type_known CHECK (type IN ('post', 'repost', 'quote')),
    ADD CONSTRAINT posts_shape CHECK (
        (type = 'post' AND repost_id IS NULL AND content IS NOT NULL)
        OR (type = 'repost' AND repost_id IS NOT NULL AND content IS NULL)
        OR (type = 'quote' AND repost_id IS NOT NULL AND content IS NOT NULL));
