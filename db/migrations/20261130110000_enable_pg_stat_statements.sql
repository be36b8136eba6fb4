-- migrate:up
-- Per-statement figures (calls, time, rows, buffers) for `python -m posterr top`, which groups them
-- by the name each named query carries in a comment (/* posterr:page_latest */). The view answers
-- only on a server that loads the library (shared_preload_libraries = pg_stat_statements, as
-- scripts/services.sh and docker-compose.yml start it). Where the extension cannot be created (not
-- installed, or the role may not), the migration goes on: nothing else needs it, and `top` says
-- what is missing and how to add it.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
EXCEPTION WHEN insufficient_privilege OR undefined_file THEN
    RAISE NOTICE 'pg_stat_statements not created (%): python -m posterr top will say how to enable it', SQLERRM;
END
$$;

-- migrate:down
DROP EXTENSION IF EXISTS pg_stat_statements;
