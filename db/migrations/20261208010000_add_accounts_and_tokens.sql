-- migrate:up
-- Accounts (contract v2.0): a password, stored only as its Argon2id hash (PHC string form, which
-- carries its own parameters and salt). NULL: the account has no password yet (made in `legacy`
-- mode, or before v2.0): it cannot get a token until an operator sets one (`users set-password`).
ALTER TABLE users ADD COLUMN password_hash text;

-- Bearer tokens: only the SHA-256 digest of each is kept (a token is 32 random bytes, so a slow hash
-- would add nothing), with the last four characters as the hint its owner recognises it by.
-- A revoked token keeps its row (revoked_at set), so that an operator can tell when it was revoked.
CREATE TABLE api_tokens (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      bigint NOT NULL REFERENCES users (id),
    digest       bytea NOT NULL CONSTRAINT api_tokens_digest_length CHECK (octet_length(digest) = 32),
    hint         text NOT NULL,
    scopes       text[] NOT NULL CONSTRAINT api_tokens_known_scopes CHECK (scopes <@ ARRAY['read', 'write']),
    name         text NOT NULL DEFAULT '' CONSTRAINT api_tokens_name_length CHECK (char_length(name) <= 100),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    -- Kept to the minute: set once a minute at most, not on every request (tokens.sql, touch_token).
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Every request with a token looks it up by its digest.
CREATE UNIQUE INDEX api_tokens_digest_key ON api_tokens (digest);
-- A user's live tokens, newest first (GET /api/tokens), and revoking them all at once.
CREATE INDEX api_tokens_user_id_created_at_id_idx ON api_tokens (user_id, created_at DESC, id DESC)
    WHERE revoked_at IS NULL;

-- The live tokens with this digest that may write for this user now: not revoked, not expired, with
-- the write scope (one at most). Writes check it inside their own transaction (author_of_new_post,
-- write_token_is_live, claim_idempotency_key), so a token revoked before a write began is never
-- acknowledged, whatever a worker has cached. They ask EXISTS (SELECT FROM write_tokens(…)): a
-- set-returning SQL function called in FROM is inlined into the query that calls it, and so planned
-- with it once, where a function returning the EXISTS itself would be planned again at every call
-- (about 100 µs of the server's CPU per write, measured by make bench).
CREATE FUNCTION write_tokens(token_digest bytea, acting_user bigint) RETURNS SETOF api_tokens
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT * FROM api_tokens t
    WHERE t.digest = token_digest AND t.user_id = acting_user AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > now()) AND 'write' = ANY (t.scopes)
$$;

-- migrate:down
DROP FUNCTION write_tokens(bytea, bigint);
DROP TABLE api_tokens;
ALTER TABLE users DROP COLUMN password_hash;
