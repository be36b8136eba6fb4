"""`make bench BENCH_SYNC=1`'s synchronous standby (loadtests/harness.py SyncStandby): the suite's
replica is named in the primary's synchronous_standby_names while a row runs and only then, and the
setting is reset when the row fails too: left set, every later commit would wait for that replica."""

from __future__ import annotations

import psycopg
import pytest

from loadtests import harness
from tests.conftest import SERVICES_ENV


def primary_view(database_url: str) -> tuple[str, str | None]:
    """The primary's synchronous_standby_names and the replica's sync_state, from a new session."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        names = conn.execute("SHOW synchronous_standby_names").fetchone()[0]
        state = conn.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                             (harness.SyncStandby.NAME,)).fetchone()
    return names, state[0] if state else None


@pytest.fixture
def standby(servers, monkeypatch, tmp_path):
    if not servers.owned:
        pytest.skip("needs the suite's own PostgreSQL (it changes a server-wide setting)")
    for name, value in SERVICES_ENV.items():  # scripts/services.sh then acts on the suite's servers
        monkeypatch.setenv(name, value)
    found = harness.SyncStandby(servers.database_url, tmp_path / "replica.log")
    found.start()
    return found


def test_the_replica_is_synchronous_during_the_row_only(standby, servers):
    assert primary_view(servers.database_url) == ("", "async")
    with standby.waited_for():
        assert primary_view(servers.database_url) == (harness.SyncStandby.NAME, "sync")
    assert primary_view(servers.database_url) == ("", "async")


def test_a_failed_row_leaves_the_primary_asynchronous(standby, servers):
    with pytest.raises(RuntimeError), standby.waited_for():
        raise RuntimeError("wrk failed")
    assert primary_view(servers.database_url) == ("", "async")


def test_a_server_of_your_own_is_refused(servers, monkeypatch, tmp_path):
    monkeypatch.setenv("POSTERR_PG_PORT", "1")
    with pytest.raises(SystemExit):
        harness.SyncStandby(servers.database_url, tmp_path / "replica.log")
