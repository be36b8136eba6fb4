-- migrate:up
-- token_writes_for (20261208010000) returned a boolean from an EXISTS: PostgreSQL does not inline
-- such a function, and planned its body again at every call (about 100 µs of the server's CPU per
-- write, measured by make bench). A set-returning SQL function called in FROM is inlined into the
-- query that calls it, so each write's check is planned with that query, once: the callers ask
-- EXISTS (SELECT FROM write_tokens(digest, user)).
CREATE FUNCTION write_tokens(token_digest bytea, acting_user bigint) RETURNS SETOF api_tokens
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT * FROM api_tokens t
    WHERE t.digest = token_digest AND t.user_id = acting_user AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > now()) AND 'write' = ANY (t.scopes)
$$;

DROP FUNCTION token_writes_for(bytea, bigint);

-- migrate:down
CREATE FUNCTION token_writes_for(token_digest bytea, acting_user bigint) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT EXISTS (
        SELECT 1 FROM api_tokens t
        WHERE t.digest = token_digest AND t.user_id = acting_user AND t.revoked_at IS NULL
          AND (t.expires_at IS NULL OR t.expires_at > now()) AND 'write' = ANY (t.scopes)
    )
$$;
DROP FUNCTION write_tokens(bytea, bigint);
