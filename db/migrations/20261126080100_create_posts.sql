-- migrate:up
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE posts (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id),
    type         text NOT NULL CONSTRAINT posts_type_known CHECK (type IN ('post', 'repost', 'quote')),
    -- NULL for a repost: its text is the reposted post's, read through repost_id.
    content      text CONSTRAINT posts_content_length CHECK (char_length(content) BETWEEN 1 AND 777),
    repost_id    bigint REFERENCES posts (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    repost_count integer NOT NULL DEFAULT 0 CHECK (repost_count >= 0),
    quote_count  integer NOT NULL DEFAULT 0 CHECK (quote_count >= 0),
    CONSTRAINT posts_shape CHECK (
        (type = 'post'   AND repost_id IS NULL     AND content IS NOT NULL) OR
        (type = 'repost' AND repost_id IS NOT NULL AND content IS NULL) OR
        (type = 'quote'  AND repost_id IS NOT NULL AND content IS NOT NULL)
    )
);

-- Global feed, newest first, keyset on (created_at, id).
CREATE INDEX posts_created_at_id_idx ON posts (created_at DESC, id DESC);
-- Trending feed: (repost_count + quote_count) descending, then newest first.
CREATE INDEX posts_trending_idx ON posts ((repost_count + quote_count) DESC, created_at DESC, id DESC);
-- Profile feed and followed_by feed (one index range per followee).
CREATE INDEX posts_user_id_created_at_id_idx ON posts (user_id, created_at DESC, id DESC);
-- A user reposts a given post at most once; also finds a post's reposts.
CREATE UNIQUE INDEX posts_one_repost_per_user_key ON posts (repost_id, user_id) WHERE type = 'repost';
-- Finds the quotes of a post (and serves the foreign key on delete).
CREATE INDEX posts_quotes_idx ON posts (repost_id) WHERE type = 'quote';
-- Keyword search: case-insensitive substring (ILIKE) over posts and quotes.
CREATE INDEX posts_content_trgm_idx ON posts USING gin (content gin_trgm_ops);

-- A post as the API shows it: its author's name, a repost's text taken from what it reposts, and
-- the referenced post ("original"), whose own text, if it is a repost, is taken the same way.
-- Queries filter and order `posts` through its indexes first, then join this view by id.
CREATE VIEW post_details AS
SELECT p.id, p.user_id, u.username, p.type,
       coalesce(p.content, o.content) AS content,
       p.repost_id, p.repost_count, p.quote_count, p.created_at,
       o.id AS original_id, o.user_id AS original_user_id, ou.username AS original_username,
       o.type AS original_type, coalesce(o.content, oo.content) AS original_content,
       o.created_at AS original_created_at
FROM posts p
JOIN users u ON u.id = p.user_id
LEFT JOIN posts o ON o.id = p.repost_id
LEFT JOIN users ou ON ou.id = o.user_id
LEFT JOIN posts oo ON oo.id = o.repost_id;

-- migrate:down
DROP VIEW post_details;
DROP TABLE posts;
DROP EXTENSION IF EXISTS pg_trgm;
