-- name: write_position :one
-- Where the primary's WAL ends, taken just after a write commits: a replica that has replayed this
-- far shows that write. The insert position, not the write position: with synchronous_commit off
-- the commit record may not be written out yet when COMMIT returns.
-- Index: none needed (no table is read).
SELECT pg_current_wal_insert_lsn()::text AS position;

-- name: primary_position :one
-- How far the primary's WAL has been written out, sampled to measure each replica's staleness (an
-- idle primary's insert position can sit past a page header that no replica ever replays). `started`
-- tells this server apart from any other (see replica_position).
-- Index: none needed (no table is read).
SELECT pg_current_wal_lsn()::text AS position, pg_postmaster_start_time() AS started;

-- name: replica_position :one
-- How far a replica has replayed the primary's WAL, and how late its last replayed commit was.
-- `started` (when its postmaster started) names the server whatever name a URL reaches it by: a
-- "replica" that is not in recovery and started when the primary did is the primary itself.
-- Index: none needed (no table is read).
SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_replay_lsn()::text AS position,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS replay_age,
       pg_postmaster_start_time() AS started;

-- name: member_state :one
-- One member of a fail-over cluster as `python -m posterr replicas` shows it: its role, its timeline
-- (the primary's from its current WAL file's name; a standby's from the WAL it receives) and where
-- its WAL is (written on a primary, replayed on a standby).
-- Index: none needed (no table is read).
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_is_in_recovery() THEN (SELECT received_tli FROM pg_stat_wal_receiver)
            ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline,
       CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text AS position;
