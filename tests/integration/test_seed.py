"""`make seed` leaves the database vacuumed and analyzed (a benchmark right after must not measure
autovacuum)."""

from __future__ import annotations

from loadtests.harness import SEEDED_TABLES, run_seed


def test_a_seed_leaves_every_table_vacuumed_and_analyzed(servers, sql):
    run_seed(servers.database_url, users=20, posts=200, follows=3)
    # A partitioned table (post_search) is vacuumed in its partitions, where its rows are.
    tables = [leaf for table in SEEDED_TABLES for (leaf,) in sql.execute(
        "SELECT relid::regclass::text FROM pg_partition_tree(%s) WHERE isleaf", (table,)).fetchall()]
    for table in tables:
        vacuumed, analyzed, dead = sql.execute(
            "SELECT coalesce(last_vacuum, last_autovacuum) IS NOT NULL, "
            "coalesce(last_analyze, last_autoanalyze) IS NOT NULL, n_dead_tup "
            "FROM pg_stat_user_tables WHERE relname = %s", (table,)).fetchone()
        assert (vacuumed, analyzed, dead) == (True, True, 0), table
