"""How logs, metrics, /readyz and the operator commands name a PostgreSQL server: host:port, no
user or password, every host of a multi-host (fail-over) URL."""

from __future__ import annotations

import pytest

from posterr.db import server_name


@pytest.mark.parametrize(("url", "name"), [
    ("postgres://posterr@127.0.0.1:54329/posterr?sslmode=disable", "127.0.0.1:54329"),
    ("postgresql://user:secret@db.internal/posterr", "db.internal:5432"),
    ("postgresql:///posterr", "localhost:5432"),
    ("postgresql://[::1]:6432/posterr", "[::1]:6432"),
    ("postgresql://[::1]/posterr", "[::1]:5432"),
    ("postgresql://posterr@10.0.0.1:5432,10.0.0.2:5433,10.0.0.3/posterr?target_session_attrs=read-write",
     "10.0.0.1:5432,10.0.0.2:5433,10.0.0.3:5432"),
    ("postgresql://u:p@a:1,b/posterr", "a:1,b:5432"),
])
def test_a_server_is_named_by_its_hosts_and_ports_only(url, name):
    assert server_name(url) == name
