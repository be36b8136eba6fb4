-- Readers for `make bench`'s "Following" rows (loadtests/bench.py, run by loadtests/harness.py on the
-- seeded template database): for each N of `follows` (an array), user `readerN` follows exactly N
-- seeded users (`seed…`), spread evenly over their ids, so that its home feed
-- (GET /api/posts?followed_by=ID) holds the posts of N accounts. An N above the number of seeded users
-- gets no reader (and a reader already there loses its follows). Parameter: follows.
-- Idempotent: a second run changes nothing. Follows are added and removed only where they differ from
-- that plan, and the counters (users.followers_count, following_count) of every user whose follows
-- changed are recounted from `follows`, as db/seed/seed.sql's `counters` step does for all users.
-- One transaction; it ends by returning how many users' counters were recounted (0: nothing changed).
-- (loadtests/harness.py runs one statement per ";" + newline, as for db/seed/seed.sql.)

-- step: readers
BEGIN;
INSERT INTO users (username)
SELECT 'reader' || n
FROM unnest(%(follows)s::int[]) AS n
WHERE n <= (SELECT count(*) FROM users WHERE username LIKE 'seed%%')
ON CONFLICT DO NOTHING;

-- The planned follows: reader N follows the seeded users at positions 1 + floor(k * seeded / N),
-- k = 0 … N - 1, of the seeded ids in order (N distinct users when N <= seeded).
CREATE TEMP TABLE reader_follows ON COMMIT DROP AS
WITH ids AS (SELECT array_agg(id ORDER BY id) AS id FROM users WHERE username LIKE 'seed%%'),
     readers AS (SELECT n, u.id
                 FROM unnest(%(follows)s::int[]) AS n
                 JOIN users AS u ON lower(u.username) = 'reader' || n)
SELECT r.id AS follower_id, ids.id[1 + (k::bigint * cardinality(ids.id)) / r.n] AS followee_id,
       now() - k * interval '1 second' AS created_at
FROM readers AS r, ids, generate_series(0, r.n - 1) AS k
WHERE r.n <= cardinality(ids.id);

CREATE TEMP TABLE reader_touched (id bigint PRIMARY KEY) ON COMMIT DROP;

WITH removed AS (
    DELETE FROM follows AS f
    USING unnest(%(follows)s::int[]) AS n, users AS u
    WHERE lower(u.username) = 'reader' || n AND f.follower_id = u.id
      AND NOT EXISTS (SELECT FROM reader_follows AS w
                      WHERE w.follower_id = f.follower_id AND w.followee_id = f.followee_id)
    RETURNING f.follower_id, f.followee_id
), added AS (
    INSERT INTO follows (follower_id, followee_id, created_at)
    SELECT follower_id, followee_id, created_at FROM reader_follows
    ON CONFLICT DO NOTHING
    RETURNING follower_id, followee_id
)
INSERT INTO reader_touched (id)
SELECT follower_id FROM removed UNION SELECT followee_id FROM removed
UNION SELECT follower_id FROM added UNION SELECT followee_id FROM added;

UPDATE users AS u
SET followers_count = (SELECT count(*) FROM follows WHERE followee_id = u.id),
    following_count = (SELECT count(*) FROM follows WHERE follower_id = u.id)
WHERE u.id IN (SELECT id FROM reader_touched);

SELECT count(*) AS recounted FROM reader_touched;
COMMIT;
