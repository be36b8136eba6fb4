"""The data tier's own parts (posterr/data_tier.py) that need no server: what it tells of the
primary (the pools are made, not opened). Where its reads go, the fallback from a failed replica and
the write positions it keeps need servers: tests/integration/test_data_tier.py."""

from __future__ import annotations

from posterr.data_tier import DataTier
from posterr.db import Database, load_queries


def test_the_data_tier_names_its_primary_as_the_url_does():
    """Every host of a fail-over list (libpq's multi-host form, as behind Patroni), none dropped."""
    primary = Database("postgres://posterr@db1:5433,db2:5433/posterr", load_queries(), min_size=0, max_size=1,
                       timeout=1, statement_timeout_ms=1000)
    assert DataTier(primary).name == "db1:5433,db2:5433"
