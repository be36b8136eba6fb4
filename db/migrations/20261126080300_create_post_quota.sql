-- migrate:up
-- The authoritative daily posting counter: one row per user and UTC day, bumped in the same
-- statement that inserts the post, so the limit holds whatever happens to Redis.
CREATE TABLE post_quota (
    user_id bigint NOT NULL REFERENCES users (id),
    day     date NOT NULL,
    used    integer NOT NULL CHECK (used >= 0),
    PRIMARY KEY (user_id, day)
);

-- migrate:down
DROP TABLE post_quota;
