-- Bulk seed for benchmarks and query-plan tests: run by `make seed` and tests/integration/test_query_plans.py.
-- Parameters: users, posts, follows_per_user. Adds to what is there; counters are recomputed at the end.
-- Shares: 80% posts, 10% reposts, 10% quotes; dates spread over the last 180 days; text drawn from a
-- vocabulary whose words range from common to rare, so keyword search has something to find.
-- The whole seed is one transaction (BEGIN in `users`, COMMIT in `indexes`): an interrupted seed
-- leaves the tables, and their indexes, as they were. (posterr/seed.py runs one statement per
-- ";" + newline, so the DO blocks below keep their inner semicolons inside a line.)

-- step: users
BEGIN;
CREATE TEMP TABLE seed_settings ON COMMIT DROP AS SELECT %(posts)s::bigint AS posts;
INSERT INTO users (username, created_at)
SELECT 'seed' || g, now() - interval '400 days' + g * interval '1 second'
FROM generate_series(1, %(users)s) AS g
ON CONFLICT DO NOTHING;

-- step: drop indexes
-- When the seed adds at least as many posts as there are, the plain (non-unique) indexes of posts
-- and follows are dropped here and built again by the `indexes` step: building an index once is
-- faster than maintaining it row by row (in all, 1M posts: 46 s instead of 52 s; 10M: 5 min).
-- Unique indexes stay: ON CONFLICT and the foreign keys need them. The definitions are taken from
-- the catalog, so they are exactly what the migrations made. DROP INDEX locks posts and follows
-- until the COMMIT: a running app waits for the seed.
CREATE TEMP TABLE seed_indexes ON COMMIT DROP AS
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index AS i
WHERE i.indrelid IN ('posts'::regclass, 'follows'::regclass) AND NOT i.indisunique
  AND (SELECT count(*) FROM (SELECT FROM posts LIMIT (SELECT posts FROM seed_settings)) AS existing)
      < (SELECT posts FROM seed_settings);
DO $$ DECLARE ix record; BEGIN
  FOR ix IN SELECT name FROM seed_indexes LOOP EXECUTE 'DROP INDEX ' || ix.name; END LOOP; END $$;

-- step: posts
WITH ids AS (SELECT array_agg(id ORDER BY id) AS id FROM users),
     vocabulary AS (SELECT string_to_array(
        'the a and to of in is it you that he was for on are with as his they be at one have this from '
        'or had by hot word but what some we can out other were all there when up use your how said an '
        'each she which do their time if will way about many then them write would like so these her long '
        'make thing see him two has look more day could go come did number sound no most people my over '
        'know water than call first who may down side been now find any new work part take get place made '
        'live where after back little only round man year came show every good me give our under name very '
        'through just form sentence great think say help low line differ turn cause much mean before move '
        'right boy old too same tell does set three want air well also play small end put home read hand '
        'port large spell add even land here must big high such follow act why ask men change went light '
        'kind off need house picture try us again animal point mother world near build self earth father '
        'posterr kitten zebra quokka axolotl narwhal pangolin okapi', ' ') AS word)
INSERT INTO posts (user_id, type, content, created_at)
SELECT ids.id[1 + (g::bigint * 7919) %% cardinality(ids.id)], 'post',
       initcap(v.word[1 + (g * 31) %% cardinality(v.word)]) || ' ' ||
       v.word[1 + (g * 17 + g / 3) %% cardinality(v.word)] || ' ' ||
       v.word[1 + ((g * 13) # (g / 7)) %% cardinality(v.word)] || ' ' ||
       v.word[1 + (g * 101 + 7) %% (cardinality(v.word) - 8)] || ' ' ||
       v.word[1 + ((g / 11) * 59) %% (cardinality(v.word) - 8)] || ' #' || (g %% 997),
       now() - (g %% 15552000) * interval '1 second' - (g %% 1000) * interval '1 microsecond'
FROM generate_series(1, (%(posts)s * 8) / 10) AS g, ids, vocabulary AS v;

-- step: reposts and quotes
-- Targets are drawn from the id range of posts and kept only where they are of type 'post', so no
-- repost of a repost and no quote of a quote is made even when seeding on top of earlier seeds.
-- `picks` is materialised so that the join with posts carries two ids per row, not the users array.
WITH ids AS (SELECT array_agg(id ORDER BY id) AS id FROM users),
     originals AS (SELECT min(id) AS low, max(id) AS high FROM posts WHERE type = 'post'),
     picks AS MATERIALIZED (
        SELECT g, ids.id[1 + (g::bigint * 104729) %% cardinality(ids.id)] AS user_id,
               o.low + ((g::bigint * g) %% (o.high - o.low + 1)) AS target_id
        FROM generate_series(1, %(posts)s - (%(posts)s * 8) / 10) AS g
        CROSS JOIN ids
        CROSS JOIN originals AS o)
INSERT INTO posts (user_id, type, content, repost_id, created_at)
SELECT picks.user_id,
       CASE WHEN g %% 2 = 0 THEN 'repost' ELSE 'quote' END,
       CASE WHEN g %% 2 = 0 THEN NULL ELSE 'my take on it, number ' || g END,
       target.id,
       greatest(target.created_at, now() - (g %% 7776000) * interval '1 second')
FROM picks
JOIN posts AS target ON target.id = picks.target_id AND target.type = 'post'
ON CONFLICT DO NOTHING;

-- step: follows
WITH ids AS (SELECT array_agg(id ORDER BY id) AS id FROM users)
INSERT INTO follows (follower_id, followee_id, created_at)
SELECT ids.id[1 + g %% cardinality(ids.id)], ids.id[1 + (g * 7 + k * 131) %% cardinality(ids.id)],
       now() - (g + k) * interval '1 second'
FROM ids, generate_series(0, cardinality(ids.id) - 1) AS g, generate_series(1, %(follows_per_user)s) AS k
WHERE ids.id[1 + g %% cardinality(ids.id)] <> ids.id[1 + (g * 7 + k * 131) %% cardinality(ids.id)]
ON CONFLICT DO NOTHING;

-- step: counters
UPDATE users u
SET posts_count = coalesce(p.n, 0), followers_count = coalesce(fr.n, 0), following_count = coalesce(fg.n, 0)
FROM users x
LEFT JOIN (SELECT user_id, count(*) AS n FROM posts GROUP BY user_id) p ON p.user_id = x.id
LEFT JOIN (SELECT followee_id, count(*) AS n FROM follows GROUP BY followee_id) fr ON fr.followee_id = x.id
LEFT JOIN (SELECT follower_id, count(*) AS n FROM follows GROUP BY follower_id) fg ON fg.follower_id = x.id
WHERE u.id = x.id;

UPDATE posts t
SET repost_count = c.reposts, quote_count = c.quotes
FROM (SELECT repost_id, count(*) FILTER (WHERE type = 'repost') AS reposts,
             count(*) FILTER (WHERE type = 'quote') AS quotes
      FROM posts WHERE repost_id IS NOT NULL GROUP BY repost_id) c
WHERE t.id = c.repost_id;

-- step: indexes
SET LOCAL maintenance_work_mem = '256MB';
DO $$ DECLARE ix record; BEGIN
  FOR ix IN SELECT definition FROM seed_indexes LOOP EXECUTE ix.definition; END LOOP; END $$;
COMMIT;

-- step: statistics
ANALYZE users;
ANALYZE posts;
ANALYZE follows;
