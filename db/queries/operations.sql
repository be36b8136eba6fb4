-- What `python -m posterr top` and `activity` read: the server's own statistics views. Each named
-- query's text starts with /* posterr:NAME */, so these rows say which named query they are.

-- name: statement_stats :many
-- Every top-level statement pg_stat_statements has seen in this database, with its figures since
-- the statistics were last reset (by anyone). `top` groups them by named query.
-- Index: none: pg_stat_statements is a view over the server's shared memory (pg_database_oid_index
-- finds this database).
SELECT s.queryid, s.query, s.calls, s.total_exec_time, s.max_exec_time, s.rows,
       s.shared_blks_hit, s.shared_blks_read
FROM pg_stat_statements s
WHERE s.dbid = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
  AND s.toplevel;

-- name: running_statements :many
-- What each other client connection to this database is doing, longest first: its statement (or
-- the last one, when idle), state, wait event, for how long, and the processes that block it.
-- Index: none: pg_stat_activity is a view over the server's shared memory.
SELECT a.pid, a.state, a.wait_event_type, a.wait_event, a.query, a.application_name,
       host(a.client_addr) AS client,
       -- at least 0: a statement may have started after this one's transaction took now()
       greatest(0, extract(epoch FROM now() - coalesce(CASE WHEN a.state = 'active' THEN a.query_start END,
                                                       a.state_change)))::float8 AS seconds,
       pg_blocking_pids(a.pid) AS blocked_by
FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() AND a.backend_type = 'client backend'
ORDER BY seconds DESC NULLS LAST;
