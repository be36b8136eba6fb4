-- Bulk seed for benchmarks and query-plan tests: run by `make seed` and tests/integration/test_query_plans.py.
-- Parameters: users, posts, follows_per_user. Adds to what is there; counters are recomputed at the end.
-- Shares: 75% posts, 10% reposts, 10% quotes, 5% replies; dates spread over the last 180 days; text
-- drawn from a vocabulary whose words range from common to rare, so keyword search has something to
-- find. Replies answer posts, quotes and other replies (threads up to four deep), and the `threads`
-- step adds one thread posts/1,000 replies deep and one posts/100 replies wide (at 1M posts: 1,000
-- and 10,000, the threads `make bench` reads the context of).
-- The whole seed is one transaction (BEGIN in `users`, COMMIT in `indexes`): an interrupted seed
-- leaves the tables, and their indexes, as they were. (loadtests/harness.py runs one statement per
-- ";" + newline, so the DO blocks below keep their inner semicolons inside a line.)

-- step: users
BEGIN;
CREATE TEMP TABLE seed_settings ON COMMIT DROP AS SELECT %(posts)s::bigint AS posts;
INSERT INTO users (username, created_at)
SELECT 'seed' || g, now() - interval '400 days' + g * interval '1 second'
FROM generate_series(1, %(users)s) AS g
ON CONFLICT DO NOTHING;

-- step: drop indexes
-- When the seed adds at least as many posts as there are, the plain (non-unique) indexes of posts,
-- follows and post_search (the trigram index of its segments: its definition on the partitioned
-- table, without ONLY, builds it on every segment) are dropped here and built again by the
-- `indexes` step: building an index once is
-- faster than maintaining it row by row (in all, 1M posts: 46 s instead of 52 s; 10M: 5 min).
-- Unique indexes stay: ON CONFLICT and the foreign keys need them. The definitions are taken from
-- the catalog, so they are exactly what the migrations made. DROP INDEX locks posts and follows
-- until the COMMIT: a running app waits for the seed.
CREATE TEMP TABLE seed_indexes ON COMMIT DROP AS
SELECT i.indexrelid::regclass::text AS name,
       replace(pg_get_indexdef(i.indexrelid), ' ON ONLY ', ' ON ') AS definition
FROM pg_index AS i
WHERE i.indrelid IN ('posts'::regclass, 'follows'::regclass, 'post_search'::regclass) AND NOT i.indisunique
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
FROM generate_series(1, (%(posts)s * 75) / 100) AS g, ids, vocabulary AS v;

-- step: reposts and quotes
-- Targets are drawn from the id range of posts and kept only where they are of type 'post', so no
-- repost of a repost and no quote of a quote is made even when seeding on top of earlier seeds.
-- `picks` is materialised so that the join with posts carries two ids per row, not the users array.
WITH ids AS (SELECT array_agg(id ORDER BY id) AS id FROM users),
     originals AS (SELECT min(id) AS low, max(id) AS high FROM posts WHERE type = 'post'),
     picks AS MATERIALIZED (
        SELECT g, ids.id[1 + (g::bigint * 104729) %% cardinality(ids.id)] AS user_id,
               o.low + ((g::bigint * g) %% (o.high - o.low + 1)) AS target_id
        FROM generate_series(1, %(posts)s / 5) AS g
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

-- step: replies
-- The replies left after the other shares and the two threads: half answer posts and quotes, drawn
-- from the id range as above, then three rounds each answer the newest replies (those of the round
-- before), so threads nest. A reply is newer than what it answers, but never in the future.
CREATE TEMP TABLE seed_replies ON COMMIT DROP AS
SELECT greatest(%(posts)s - (%(posts)s * 75) / 100 - %(posts)s / 5 - %(posts)s / 1000 - %(posts)s / 100 - 2, 0) AS total;
WITH ids AS (SELECT array_agg(id ORDER BY id) AS id FROM users),
     answered AS (SELECT min(id) AS low, max(id) AS high FROM posts WHERE type IN ('post', 'quote')),
     picks AS MATERIALIZED (
        SELECT g, ids.id[1 + mod(g::bigint * 15485863, cardinality(ids.id))] AS user_id,
               a.low + mod(g::bigint * 2654435761, a.high - a.low + 1) AS target_id
        FROM generate_series(1, (SELECT total FROM seed_replies) / 2) AS g
        CROSS JOIN ids
        CROSS JOIN answered AS a)
INSERT INTO posts (user_id, type, content, reply_to_id, created_at)
SELECT picks.user_id, 'reply', 'I would add: ' || v.word, target.id,
       least(target.created_at + (1 + mod(g, 86400)) * interval '1 second', now())
FROM picks
JOIN posts AS target ON target.id = picks.target_id AND target.type IN ('post', 'quote')
CROSS JOIN LATERAL (SELECT (ARRAY['yes', 'no', 'maybe', 'kitten', 'zebra', 'the other way'])[1 + mod(g, 6)] AS word) AS v;
DO $$ DECLARE round int; BEGIN
  FOR round IN 1..3 LOOP
    INSERT INTO posts (user_id, type, content, reply_to_id, created_at)
    SELECT parent.user_id, 'reply', 'and to that, round ' || round, parent.id, least(parent.created_at + interval '1 second', now())
    FROM (SELECT id, user_id, type, created_at FROM posts ORDER BY id DESC LIMIT (SELECT total FROM seed_replies) / 6) AS parent
    WHERE parent.type = 'reply'; END LOOP; END $$;

-- step: threads
-- One thread posts/1,000 replies deep (each reply answers the one before) and one posts/100 replies
-- wide (every reply answers its root), at least 2 of each. The deep one's ids are drawn from the
-- identity's sequence first, so each row can name the one it answers. Content says what they are,
-- for `make bench` to find.
WITH ids AS (SELECT array_agg(id ORDER BY id) AS id FROM users),
     chain AS MATERIALIZED (
        SELECT n, nextval(pg_get_serial_sequence('posts', 'id')) AS id FROM generate_series(0, greatest(%(posts)s / 1000, 2)) AS n),
     linked AS (SELECT n, id, lag(id) OVER (ORDER BY n) AS parent FROM chain)
INSERT INTO posts (id, user_id, type, content, reply_to_id, created_at) OVERRIDING SYSTEM VALUE
SELECT l.id, ids.id[1 + (l.n * 7) %% cardinality(ids.id)], CASE WHEN l.n = 0 THEN 'post' ELSE 'reply' END,
       CASE WHEN l.n = 0 THEN 'seed: a deep thread' ELSE 'seed: deep reply ' || l.n END,
       l.parent, now() - interval '1 day' + l.n * interval '1 second'
FROM linked AS l, ids
ORDER BY l.n;
WITH ids AS (SELECT array_agg(id ORDER BY id) AS id FROM users),
     root AS (INSERT INTO posts (user_id, type, content, created_at)
              SELECT ids.id[1], 'post', 'seed: a wide thread', now() - interval '2 days' FROM ids
              RETURNING id, created_at)
INSERT INTO posts (user_id, type, content, reply_to_id, created_at)
SELECT ids.id[1 + (g * 13) %% cardinality(ids.id)], 'reply', 'seed: wide reply ' || g, root.id,
       root.created_at + g * interval '1 millisecond'
FROM root, ids, generate_series(1, greatest(%(posts)s / 100, 2)) AS g;

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

UPDATE posts t
SET reply_count = c.replies
FROM (SELECT reply_to_id, count(*) AS replies FROM posts WHERE reply_to_id IS NOT NULL GROUP BY reply_to_id) c
WHERE t.id = c.reply_to_id;

-- step: indexes
-- The new posts are in post_search's open segment: cut into segments (copied without an index when
-- the index was dropped above, so each segment's is built in one pass here).
SELECT seal_search_segments(split => true);
SET LOCAL maintenance_work_mem = '256MB';
DO $$ DECLARE ix record; BEGIN
  FOR ix IN SELECT definition FROM seed_indexes LOOP EXECUTE ix.definition; END LOOP; END $$;
SELECT settle_search_segments();
COMMIT;

-- step: statistics
ANALYZE users;
ANALYZE posts;
ANALYZE follows;
ANALYZE post_search;
