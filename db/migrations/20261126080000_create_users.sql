-- migrate:up
CREATE TABLE users (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Stored as given; uniqueness ignores case (users_username_lower_key).
    username        text NOT NULL CONSTRAINT users_username_format CHECK (username ~ '^[A-Za-z0-9]{1,14}$'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- Kept exact by the statements that write posts and follows, never recounted per request.
    posts_count     integer NOT NULL DEFAULT 0 CHECK (posts_count >= 0),
    followers_count integer NOT NULL DEFAULT 0 CHECK (followers_count >= 0),
    following_count integer NOT NULL DEFAULT 0 CHECK (following_count >= 0)
);

CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

-- migrate:down
DROP TABLE users;
