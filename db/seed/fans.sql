-- Authors and their fans for `make bench`'s post_fans_* rows (loadtests/bench.py, run by
-- loadtests/harness.py on the seeded template database, like db/seed/readers.sql): for each N of
-- `fans` (an array), user `authorN` is followed by exactly the N users `fan1` … `fanN`, so that a
-- post by it is pushed to N followers (or, above POSTERR_FANOUT_MAX_FOLLOWERS, to none). The fans
-- (as many as the largest N) are users of their own, apart from the seeded ones (`seed…`), so every
-- other row of the bench sees the same data with or without them. Parameter: fans.
-- Idempotent: a second run changes nothing. Fans are inserted only when missing, follows of the
-- authors are added and removed only where they differ from that plan, and the counters
-- (users.followers_count, following_count) of every user whose follows changed are recounted from
-- `follows`, as db/seed/seed.sql's `counters` step does for all users. 100,000 fans: about 5 s the
-- first time, under 1 s after. One transaction; it ends by returning how many users' counters were
-- recounted (0: nothing changed).
-- (loadtests/harness.py runs one statement per ";" + newline, as for db/seed/seed.sql.)

-- step: fans
BEGIN;
-- Only the missing ones: ON CONFLICT alone would draw an id from the sequence for every fan, at
-- every run. New users start with the counters the follows below will give them, so that the
-- recount at the end finds them right and rewrites none of the 100,000 rows (it checks them all).
INSERT INTO users (username, following_count)
SELECT 'fan' || g, (SELECT count(*) FROM unnest(%(fans)s::int[]) AS n WHERE n >= g)
FROM generate_series(1, (SELECT coalesce(max(n), 0) FROM unnest(%(fans)s::int[]) AS n)) AS g
WHERE NOT EXISTS (SELECT FROM users AS u WHERE lower(u.username) = 'fan' || g)
ON CONFLICT DO NOTHING;

INSERT INTO users (username, followers_count)
SELECT 'author' || n, n
FROM unnest(%(fans)s::int[]) AS n
WHERE NOT EXISTS (SELECT FROM users AS u WHERE lower(u.username) = 'author' || n)
ON CONFLICT DO NOTHING;

-- The planned follows: fan k follows author N for k = 1 … N (the newest follow is fan1's).
CREATE TEMP TABLE fan_follows ON COMMIT DROP AS
SELECT f.id AS follower_id, a.id AS followee_id, now() - k * interval '1 millisecond' AS created_at
FROM unnest(%(fans)s::int[]) AS n
JOIN users AS a ON lower(a.username) = 'author' || n
CROSS JOIN generate_series(1, n) AS k
JOIN users AS f ON lower(f.username) = 'fan' || k;

ALTER TABLE fan_follows ADD PRIMARY KEY (follower_id, followee_id);

ANALYZE fan_follows;

CREATE TEMP TABLE fan_touched (id bigint PRIMARY KEY) ON COMMIT DROP;

WITH removed AS (
    DELETE FROM follows AS f
    USING unnest(%(fans)s::int[]) AS n, users AS u
    WHERE lower(u.username) = 'author' || n AND f.followee_id = u.id
      AND NOT EXISTS (SELECT FROM fan_follows AS w
                      WHERE w.follower_id = f.follower_id AND w.followee_id = f.followee_id)
    RETURNING f.follower_id, f.followee_id
), added AS (
    INSERT INTO follows (follower_id, followee_id, created_at)
    SELECT w.follower_id, w.followee_id, w.created_at
    FROM fan_follows AS w
    WHERE NOT EXISTS (SELECT FROM follows AS f
                      WHERE f.follower_id = w.follower_id AND f.followee_id = w.followee_id)
    ON CONFLICT DO NOTHING
    RETURNING follower_id, followee_id
)
INSERT INTO fan_touched (id)
SELECT follower_id FROM removed UNION SELECT followee_id FROM removed
UNION SELECT follower_id FROM added UNION SELECT followee_id FROM added;

ANALYZE fan_touched;

-- Grouped counts (a hash join each) rather than two index scans per user: 100,000 users here.
WITH followers AS (
    SELECT followee_id AS id, count(*) AS n FROM follows
    WHERE followee_id IN (SELECT id FROM fan_touched) GROUP BY followee_id
), following AS (
    SELECT follower_id AS id, count(*) AS n FROM follows
    WHERE follower_id IN (SELECT id FROM fan_touched) GROUP BY follower_id
)
UPDATE users AS u
SET followers_count = coalesce(followers.n, 0), following_count = coalesce(following.n, 0)
FROM fan_touched AS t
LEFT JOIN followers USING (id)
LEFT JOIN following USING (id)
WHERE u.id = t.id
  AND (u.followers_count, u.following_count) IS DISTINCT FROM (coalesce(followers.n, 0)::int, coalesce(following.n, 0)::int);

SELECT count(*) AS recounted FROM fan_touched;
COMMIT;
