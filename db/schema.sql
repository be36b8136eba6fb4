\restrict dbmate

-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: pg_stat_statements; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pg_stat_statements WITH SCHEMA public;


--
-- Name: EXTENSION pg_stat_statements; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION pg_stat_statements IS 'track planning and execution statistics of all SQL statements executed';


--
-- Name: pg_trgm; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;


--
-- Name: EXTENSION pg_trgm; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION pg_trgm IS 'text similarity measurement and index searching based on trigrams';


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: posts; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.posts (
    id bigint NOT NULL,
    user_id bigint NOT NULL,
    type text NOT NULL,
    content text,
    repost_id bigint,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    repost_count integer DEFAULT 0 NOT NULL,
    quote_count integer DEFAULT 0 NOT NULL,
    reply_to_id bigint,
    reply_count integer DEFAULT 0 NOT NULL,
    CONSTRAINT posts_content_length CHECK (((char_length(content) >= 1) AND (char_length(content) <= 777))),
    CONSTRAINT posts_quote_count_check CHECK ((quote_count >= 0)),
    CONSTRAINT posts_reply_count_check CHECK ((reply_count >= 0)),
    CONSTRAINT posts_repost_count_check CHECK ((repost_count >= 0)),
    CONSTRAINT posts_shape CHECK ((((type = 'post'::text) AND (repost_id IS NULL) AND (reply_to_id IS NULL) AND (content IS NOT NULL)) OR ((type = 'repost'::text) AND (repost_id IS NOT NULL) AND (reply_to_id IS NULL) AND (content IS NULL)) OR ((type = 'quote'::text) AND (repost_id IS NOT NULL) AND (reply_to_id IS NULL) AND (content IS NOT NULL)) OR ((type = 'reply'::text) AND (repost_id IS NULL) AND (reply_to_id IS NOT NULL) AND (content IS NOT NULL)))),
    CONSTRAINT posts_type_known CHECK ((type = ANY (ARRAY['post'::text, 'repost'::text, 'quote'::text, 'reply'::text])))
);


--
-- Name: post_after_newest_first(public.posts, timestamp with time zone, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.post_after_newest_first(p public.posts, after_created_at timestamp with time zone, after_id bigint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT after_created_at IS NULL OR (p.created_at, p.id) < (after_created_at, after_id)
$$;


--
-- Name: post_after_trending(public.posts, integer, timestamp with time zone, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.post_after_trending(p public.posts, after_score integer, after_created_at timestamp with time zone, after_id bigint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT after_created_at IS NULL
        OR ((p.repost_count + p.quote_count), p.created_at, p.id) < (after_score, after_created_at, after_id)
$$;


--
-- Name: post_in_recent_window(public.posts, timestamp with time zone, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.post_in_recent_window(p public.posts, floor_created_at timestamp with time zone, floor_id bigint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT floor_created_at IS NULL OR (p.created_at, p.id) >= (floor_created_at, floor_id)
$$;


--
-- Name: post_passes_filters(public.posts, bigint, boolean, text, timestamp with time zone, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.post_passes_filters(p public.posts, author_id bigint, include_replies boolean, pattern text, since timestamp with time zone, until timestamp with time zone) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
    SELECT (author_id IS NULL OR p.user_id = author_id)
       AND (include_replies OR p.type <> 'reply')
       AND (pattern IS NULL OR (p.type <> 'repost' AND p.content ILIKE pattern))
       AND (since IS NULL OR p.created_at >= since)
       AND (until IS NULL OR p.created_at < until)
$$;


--
-- Name: post_search_add(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.post_search_add() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    INSERT INTO post_search (id, created_at, type, content)
    SELECT id, created_at, type, content FROM inserted WHERE type <> 'repost';
    RETURN NULL;
END
$$;


--
-- Name: post_search_change(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.post_search_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    UPDATE post_search SET content = NEW.content, created_at = NEW.created_at
    WHERE created_at = OLD.created_at AND id = OLD.id;
    RETURN NULL;
END
$$;


--
-- Name: post_search_clear(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.post_search_clear() RETURNS trigger
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


--
-- Name: seal_search_segments(bigint, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.seal_search_segments(per_segment bigint DEFAULT 100000, split boolean DEFAULT false) RETURNS integer
    LANGUAGE plpgsql
    AS $_$
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
$_$;


--
-- Name: settle_search_segments(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.settle_search_segments() RETURNS void
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


--
-- Name: api_tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_tokens (
    id bigint NOT NULL,
    user_id bigint NOT NULL,
    digest bytea NOT NULL,
    hint text NOT NULL,
    scopes text[] NOT NULL,
    name text DEFAULT ''::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone,
    last_used_at timestamp with time zone,
    revoked_at timestamp with time zone,
    CONSTRAINT api_tokens_digest_length CHECK ((octet_length(digest) = 32)),
    CONSTRAINT api_tokens_known_scopes CHECK ((scopes <@ ARRAY['read'::text, 'write'::text])),
    CONSTRAINT api_tokens_name_length CHECK ((char_length(name) <= 100))
);


--
-- Name: write_tokens(bytea, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.write_tokens(token_digest bytea, acting_user bigint) RETURNS SETOF public.api_tokens
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$
    SELECT * FROM api_tokens t
    WHERE t.digest = token_digest AND t.user_id = acting_user AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > now()) AND 'write' = ANY (t.scopes)
$$;


--
-- Name: api_tokens_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.api_tokens ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.api_tokens_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: feed_posts; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.feed_posts AS
 SELECT (0)::bigint AS feed,
    posts.id,
    posts.type,
    posts.created_at,
    (posts.repost_count + posts.quote_count) AS score
   FROM public.posts
UNION ALL
 SELECT posts.user_id AS feed,
    posts.id,
    posts.type,
    posts.created_at,
    (posts.repost_count + posts.quote_count) AS score
   FROM public.posts;


--
-- Name: follows; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.follows (
    follower_id bigint NOT NULL,
    followee_id bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT follows_not_self CHECK ((follower_id <> followee_id))
);


--
-- Name: follow_lists; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.follow_lists AS
 SELECT 'followers'::text AS list,
    follows.followee_id AS owner_id,
    follows.follower_id AS member_id,
    follows.created_at AS followed_at
   FROM public.follows
UNION ALL
 SELECT 'following'::text AS list,
    follows.follower_id AS owner_id,
    follows.followee_id AS member_id,
    follows.created_at AS followed_at
   FROM public.follows;


--
-- Name: idempotency_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.idempotency_keys (
    scope text NOT NULL,
    user_id bigint NOT NULL,
    key text NOT NULL,
    fingerprint text NOT NULL,
    status integer,
    location text,
    body bytea,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    claim bigint DEFAULT 0 NOT NULL,
    claimed_on timestamp with time zone DEFAULT pg_postmaster_start_time() NOT NULL,
    redelivered boolean DEFAULT false NOT NULL,
    CONSTRAINT idempotency_keys_key_check CHECK (((char_length(key) >= 1) AND (char_length(key) <= 255)))
);


--
-- Name: users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.users (
    id bigint NOT NULL,
    username text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    posts_count integer DEFAULT 0 NOT NULL,
    followers_count integer DEFAULT 0 NOT NULL,
    following_count integer DEFAULT 0 NOT NULL,
    password_hash text,
    CONSTRAINT users_followers_count_check CHECK ((followers_count >= 0)),
    CONSTRAINT users_following_count_check CHECK ((following_count >= 0)),
    CONSTRAINT users_posts_count_check CHECK ((posts_count >= 0)),
    CONSTRAINT users_username_format CHECK ((username ~ '^[A-Za-z0-9]{1,14}$'::text))
);


--
-- Name: post_details; Type: VIEW; Schema: public; Owner: -
--

CREATE VIEW public.post_details AS
 SELECT p.id,
    p.user_id,
    u.username,
    p.type,
    COALESCE(p.content, o.content) AS content,
    p.repost_id,
    p.repost_count,
    p.quote_count,
    p.created_at,
    o.id AS original_id,
    o.user_id AS original_user_id,
    ou.username AS original_username,
    o.type AS original_type,
    COALESCE(o.content, oo.content) AS original_content,
    o.created_at AS original_created_at,
    p.reply_to_id,
    p.reply_count,
    rp.user_id AS reply_to_user_id,
    ru.username AS reply_to_username
   FROM ((((((public.posts p
     JOIN public.users u ON ((u.id = p.user_id)))
     LEFT JOIN public.posts o ON ((o.id = p.repost_id)))
     LEFT JOIN public.users ou ON ((ou.id = o.user_id)))
     LEFT JOIN public.posts oo ON ((oo.id = o.repost_id)))
     LEFT JOIN public.posts rp ON ((rp.id = p.reply_to_id)))
     LEFT JOIN public.users ru ON ((ru.id = rp.user_id)));


--
-- Name: post_quota; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.post_quota (
    user_id bigint NOT NULL,
    day date NOT NULL,
    used integer NOT NULL,
    CONSTRAINT post_quota_used_check CHECK ((used >= 0))
);


--
-- Name: post_search; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.post_search (
    id bigint NOT NULL,
    created_at timestamp with time zone NOT NULL,
    type text NOT NULL,
    content text NOT NULL
)
PARTITION BY RANGE (created_at);


--
-- Name: post_search_open; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.post_search_open (
    id bigint NOT NULL,
    created_at timestamp with time zone NOT NULL,
    type text NOT NULL,
    content text NOT NULL
);


--
-- Name: posts_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.posts ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.posts_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version character varying NOT NULL
);


--
-- Name: search_segments; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.search_segments (
    starts_at timestamp with time zone NOT NULL,
    ends_at timestamp with time zone NOT NULL,
    posts bigint NOT NULL,
    CONSTRAINT search_segments_check CHECK ((starts_at < ends_at))
);


--
-- Name: users_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.users ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.users_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: post_search_open; Type: TABLE ATTACH; Schema: public; Owner: -
--

ALTER TABLE ONLY public.post_search ATTACH PARTITION public.post_search_open DEFAULT;


--
-- Name: api_tokens api_tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_pkey PRIMARY KEY (id);


--
-- Name: follows follows_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.follows
    ADD CONSTRAINT follows_pkey PRIMARY KEY (follower_id, followee_id);


--
-- Name: idempotency_keys idempotency_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, user_id, key);


--
-- Name: post_quota post_quota_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.post_quota
    ADD CONSTRAINT post_quota_pkey PRIMARY KEY (user_id, day);


--
-- Name: posts posts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.posts
    ADD CONSTRAINT posts_pkey PRIMARY KEY (id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: search_segments search_segments_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.search_segments
    ADD CONSTRAINT search_segments_pkey PRIMARY KEY (starts_at);


--
-- Name: users users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);


--
-- Name: api_tokens_digest_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX api_tokens_digest_key ON public.api_tokens USING btree (digest);


--
-- Name: api_tokens_user_id_created_at_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX api_tokens_user_id_created_at_id_idx ON public.api_tokens USING btree (user_id, created_at DESC, id DESC) WHERE (revoked_at IS NULL);


--
-- Name: follows_followee_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX follows_followee_created_idx ON public.follows USING btree (followee_id, created_at DESC, follower_id DESC);


--
-- Name: follows_follower_created_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX follows_follower_created_idx ON public.follows USING btree (follower_id, created_at DESC, followee_id DESC);


--
-- Name: idempotency_keys_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX idempotency_keys_created_at_idx ON public.idempotency_keys USING btree (created_at);


--
-- Name: post_search_content_trgm_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX post_search_content_trgm_idx ON ONLY public.post_search USING gin (content public.gin_trgm_ops);


--
-- Name: post_search_open_content_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX post_search_open_content_idx ON public.post_search_open USING gin (content public.gin_trgm_ops);


--
-- Name: posts_created_at_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX posts_created_at_id_idx ON public.posts USING btree (created_at DESC, id DESC);


--
-- Name: posts_one_repost_per_user_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX posts_one_repost_per_user_key ON public.posts USING btree (repost_id, user_id) WHERE (type = 'repost'::text);


--
-- Name: posts_quotes_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX posts_quotes_idx ON public.posts USING btree (repost_id) WHERE (type = 'quote'::text);


--
-- Name: posts_replies_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX posts_replies_idx ON public.posts USING btree (reply_to_id, created_at, id) WHERE (reply_to_id IS NOT NULL);


--
-- Name: posts_trending_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX posts_trending_idx ON public.posts USING btree (((repost_count + quote_count)) DESC, created_at DESC, id DESC);


--
-- Name: posts_user_id_created_at_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX posts_user_id_created_at_id_idx ON public.posts USING btree (user_id, created_at DESC, id DESC);


--
-- Name: posts_user_trending_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX posts_user_trending_idx ON public.posts USING btree (user_id, ((repost_count + quote_count)) DESC, created_at DESC, id DESC);


--
-- Name: users_username_lower_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX users_username_lower_key ON public.users USING btree (lower(username));


--
-- Name: post_search_open_content_idx; Type: INDEX ATTACH; Schema: public; Owner: -
--

ALTER INDEX public.post_search_content_trgm_idx ATTACH PARTITION public.post_search_open_content_idx;


--
-- Name: posts posts_search_changed; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER posts_search_changed AFTER UPDATE OF content, created_at ON public.posts FOR EACH ROW WHEN (((new.content IS DISTINCT FROM old.content) OR (new.created_at <> old.created_at))) EXECUTE FUNCTION public.post_search_change();


--
-- Name: posts posts_searchable; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER posts_searchable AFTER INSERT ON public.posts REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION public.post_search_add();


--
-- Name: posts posts_truncated_from_search; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER posts_truncated_from_search AFTER TRUNCATE ON public.posts FOR EACH STATEMENT EXECUTE FUNCTION public.post_search_clear();


--
-- Name: api_tokens api_tokens_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_tokens
    ADD CONSTRAINT api_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);


--
-- Name: follows follows_followee_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.follows
    ADD CONSTRAINT follows_followee_id_fkey FOREIGN KEY (followee_id) REFERENCES public.users(id);


--
-- Name: follows follows_follower_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.follows
    ADD CONSTRAINT follows_follower_id_fkey FOREIGN KEY (follower_id) REFERENCES public.users(id);


--
-- Name: post_quota post_quota_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.post_quota
    ADD CONSTRAINT post_quota_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);


--
-- Name: posts posts_reply_to_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.posts
    ADD CONSTRAINT posts_reply_to_id_fkey FOREIGN KEY (reply_to_id) REFERENCES public.posts(id);


--
-- Name: posts posts_repost_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.posts
    ADD CONSTRAINT posts_repost_id_fkey FOREIGN KEY (repost_id) REFERENCES public.posts(id);


--
-- Name: posts posts_user_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.posts
    ADD CONSTRAINT posts_user_id_fkey FOREIGN KEY (user_id) REFERENCES public.users(id);


--
-- PostgreSQL database dump complete
--

\unrestrict dbmate


--
-- Dbmate schema migrations
--

INSERT INTO public.schema_migrations (version) VALUES
    ('20261126080000'),
    ('20261126080100'),
    ('20261126080200'),
    ('20261126080300'),
    ('20261126090000'),
    ('20261130060000'),
    ('20261130100000'),
    ('20261130101000'),
    ('20261130110000'),
    ('20261202190000'),
    ('20261207010000'),
    ('20261207040000'),
    ('20261207050000'),
    ('20261207060000'),
    ('20261207070000'),
    ('20261208010000'),
    ('20261208020000'),
    ('20261208030000'),
    ('20261208100000');
