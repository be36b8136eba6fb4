-- migrate:up
-- Keyword search in time segments, newest first (issue 34; docs/architecture.md, "Keyword search").
-- A trigram index cannot return its matches in time order, so one over every post makes a rare word
-- pay for each of its matches in the table before a page of ten is kept. post_search holds what a
-- keyword is matched against (every post but reposts) in partitions by ranges of created_at, each with
-- its own trigram index: a search asks the newest segment first and stops when its page is full, so a
-- rare word pays for its matches in the few newest segments only. Partitioned by created_at, the
-- order of the feed, not by id: seeded, imported or slow-to-commit posts have ids out of time order,
-- and segments in time order make a page from the newest segments exactly the page of the whole.
-- posts keeps its keys: post_search is a copy written by a trigger, with no key of its own.
CREATE TABLE post_search (
    id         bigint      NOT NULL,
    created_at timestamptz NOT NULL,
    type       text        NOT NULL,
    content    text        NOT NULL
) PARTITION BY RANGE (created_at);

-- The open segment: every post at or after the end of the newest sealed one (and, before the first
-- seal, every post). A default partition, so that an insert never fails for want of a partition,
-- whether or not the job that seals segments has run.
CREATE TABLE post_search_open PARTITION OF post_search DEFAULT;

-- The sealed segments, one row per partition: the time range it holds. Searches read this list
-- (search_segment_bounds); sealed ranges never change, so a list read a minute ago still cuts time
-- into ranges that cover it all, the newest open-ended.
CREATE TABLE search_segments (
    starts_at timestamptz PRIMARY KEY,
    ends_at   timestamptz NOT NULL,
    posts     bigint      NOT NULL,
    CHECK (starts_at < ends_at)
);

-- The open segment's trigram index keeps a pending list (fastupdate, PostgreSQL's default), which
-- makes a post's insert cheap (0.22 ms of PostgreSQL for a post at 1M posts, against 0.47 without
-- one, as with the single index of posts before); a sealed segment receives few inserts, so its
-- index has none, and no search of it scans one. Called after each seal and after each bulk build
-- of the indexes (the migration, the seed).
CREATE FUNCTION settle_search_segments() RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    index_name regclass;
BEGIN
    FOR index_name IN
        SELECT i.indexrelid::regclass
        FROM pg_inherits h
        JOIN pg_index i ON i.indrelid = h.inhrelid
        JOIN pg_class c ON c.oid = i.indexrelid
        WHERE h.inhparent = 'post_search'::regclass AND h.inhrelid <> 'post_search_open'::regclass
          AND NOT coalesce('fastupdate=off' = ANY (c.reloptions), false)
    LOOP
        PERFORM gin_clean_pending_list(index_name);
        EXECUTE format('ALTER INDEX %s SET (fastupdate = off)', index_name);
    END LOOP;
END
$$;

-- Seals the open segment once it holds per_segment posts: its partition becomes the segment
-- [end of the newest sealed one, just after its newest post), and an empty open segment takes its
-- place. The partition is re-attached where it is, so a seal costs a scan of the open segment under a
-- short lock (posts wait for it), not a copy. With split (bulk loads: the migration, the seed), an
-- open segment of many times per_segment is cut into segments of per_segment by copying its rows.
-- One sealer at a time (each app process runs it every minute): the others return at once.
-- Returns the number of segments made.
CREATE FUNCTION seal_search_segments(per_segment bigint DEFAULT 100000, split boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql
AS $$
DECLARE
    open_posts bigint;
    lower_bound timestamptz;
    bounds timestamptz[];
    made integer := 0;
    segment text;
    upper_bound timestamptz;
    index_name text;
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtext('seal_search_segments')) THEN
        RETURN 0;
    END IF;
    SELECT count(*) INTO open_posts FROM (SELECT FROM post_search_open LIMIT per_segment) AS counted;
    IF open_posts < per_segment THEN
        RETURN 0;
    END IF;
    LOCK TABLE post_search IN ACCESS EXCLUSIVE MODE;
    lower_bound := coalesce((SELECT max(ends_at) FROM search_segments), '-infinity');
    ALTER TABLE post_search DETACH PARTITION post_search_open;
    ALTER TABLE post_search_open RENAME TO post_search_sealing;
    -- Out of the way of the name the new open segment's index takes.
    FOR index_name IN SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = 'post_search_sealing'::regclass LOOP
        EXECUTE format('ALTER INDEX %s RENAME TO post_search_sealing_content_idx', index_name);
    END LOOP;
    CREATE TABLE post_search_open PARTITION OF post_search DEFAULT;
    -- Boundaries at every per_segment-th post in time order (split), and just after the newest post.
    -- (Less than half a segment left after the last cut joins the segment before.)
    SELECT coalesce(array_agg(DISTINCT created_at ORDER BY created_at)
                    FILTER (WHERE split AND n % per_segment = 0 AND n <= total - per_segment / 2), '{}')
           || (max(created_at) + interval '1 microsecond')
    INTO bounds
    FROM (SELECT created_at, row_number() OVER (ORDER BY created_at) AS n, count(*) OVER () AS total
          FROM post_search_sealing) AS ranked;
    bounds := array_remove(bounds, lower_bound);
    FOREACH upper_bound IN ARRAY bounds LOOP
        made := made + 1;
        segment := format('post_search_%s', (SELECT count(*) + 1 FROM search_segments));
        IF cardinality(bounds) = 1 THEN
            EXECUTE format('ALTER TABLE post_search_sealing RENAME TO %I', segment);
            EXECUTE format('ALTER INDEX IF EXISTS post_search_sealing_content_idx RENAME TO %I', segment || '_content_idx');
        ELSE
            EXECUTE format('CREATE TABLE %I (LIKE post_search)', segment);
            EXECUTE format('INSERT INTO %I SELECT * FROM post_search_sealing WHERE created_at >= $1 AND created_at < $2',
                           segment) USING lower_bound, upper_bound;
        END IF;
        -- Attaching builds the segment's trigram index in one pass (or adopts the open segment's).
        EXECUTE format('ALTER TABLE post_search ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       segment, lower_bound, upper_bound);
        INSERT INTO search_segments (starts_at, ends_at, posts)
        VALUES (lower_bound, upper_bound, (SELECT count(*) FROM post_search WHERE created_at >= lower_bound
                                                                             AND created_at < upper_bound));
        lower_bound := upper_bound;
    END LOOP;
    IF made > 1 THEN
        DROP TABLE post_search_sealing;
    END IF;
    PERFORM settle_search_segments();
    RETURN made;
END
$$;

-- Every post but a repost is searchable (a repost has no text of its own). A statement-level trigger:
-- one INSERT … SELECT per statement, whether it inserted one post (POST /api/posts) or millions (the seed).
CREATE FUNCTION post_search_add() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    INSERT INTO post_search (id, created_at, type, content)
    SELECT id, created_at, type, content FROM inserted WHERE type <> 'repost';
    RETURN NULL;
END
$$;

CREATE TRIGGER posts_searchable AFTER INSERT ON posts
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION post_search_add();

-- The API never changes a post's text or time; an operator's UPDATE (a moderation, a test behind
-- the cache's back) reaches search too, a new time moving the copy to its segment. Only an UPDATE
-- that names either column fires it, not the counters' (insert_post's).
CREATE FUNCTION post_search_change() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE post_search SET content = NEW.content, created_at = NEW.created_at
    WHERE created_at = OLD.created_at AND id = OLD.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER posts_search_changed AFTER UPDATE OF content, created_at ON posts
FOR EACH ROW WHEN (NEW.content IS DISTINCT FROM OLD.content OR NEW.created_at <> OLD.created_at)
EXECUTE FUNCTION post_search_change();

-- TRUNCATE fires no row trigger (the tests' reset, `make seed RESET=1`): with no posts, no segments
-- either, only an empty open one.
CREATE FUNCTION post_search_clear() RETURNS trigger
LANGUAGE plpgsql
AS $$
DECLARE
    segment text;
BEGIN
    FOR segment IN SELECT inhrelid::regclass::text FROM pg_inherits
                   WHERE inhparent = 'post_search'::regclass AND inhrelid <> 'post_search_open'::regclass LOOP
        EXECUTE format('DROP TABLE %s', segment);
    END LOOP;
    TRUNCATE post_search_open, search_segments;
    RETURN NULL;
END
$$;

CREATE TRIGGER posts_truncated_from_search AFTER TRUNCATE ON posts
FOR EACH STATEMENT EXECUTE FUNCTION post_search_clear();

-- The posts there are now, cut into segments. No post is written meanwhile: CREATE TRIGGER keeps
-- its lock on posts until the migration commits.
INSERT INTO post_search (id, created_at, type, content)
SELECT id, created_at, type, content FROM posts WHERE type <> 'repost';
SELECT seal_search_segments(split => true);
-- Built after the copy, one pass per segment.
CREATE INDEX post_search_content_trgm_idx ON post_search USING gin (content gin_trgm_ops);
SELECT settle_search_segments();
-- Its work is post_search's now (trending keywords included: page_search_trending).
DROP INDEX posts_content_trgm_idx;
ANALYZE post_search;

-- migrate:down
CREATE INDEX posts_content_trgm_idx ON posts USING gin (content gin_trgm_ops);
DROP TRIGGER posts_truncated_from_search ON posts;
DROP TRIGGER posts_search_changed ON posts;
DROP FUNCTION post_search_change();
DROP FUNCTION post_search_clear();
DROP TRIGGER posts_searchable ON posts;
DROP FUNCTION post_search_add();
DROP FUNCTION seal_search_segments(bigint, boolean);
DROP FUNCTION settle_search_segments();
DROP TABLE search_segments;
DROP TABLE post_search;
