-- migrate:up
CREATE TABLE follows (
    follower_id bigint NOT NULL REFERENCES users (id),
    followee_id bigint NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CONSTRAINT follows_not_self CHECK (follower_id <> followee_id)
);

-- "following" list of a user, newest follow first.
CREATE INDEX follows_follower_created_idx ON follows (follower_id, created_at DESC, followee_id DESC);
-- "followers" list of a user, newest follow first.
CREATE INDEX follows_followee_created_idx ON follows (followee_id, created_at DESC, follower_id DESC);

-- migrate:down
DROP TABLE follows;
