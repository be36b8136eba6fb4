"""`python -m posterr replicas` (posterr/cli/replicas.py) behind a multi-host DATABASE_URL: each
member as a URL of its own."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict

from posterr.cli.replicas import members


@pytest.mark.parametrize(("url", "servers"), [
    ("postgres://posterr@127.0.0.1:54329/posterr", []),
    ("postgres://posterr@a:1,b:2,c:3/posterr?sslmode=disable&target_session_attrs=read-write",
     [("a", "1"), ("b", "2"), ("c", "3")]),
    ("postgresql://u@a,b/posterr", [("a", "5432"), ("b", "5432")]),
    ("host=a,b port=7 dbname=posterr", [("a", "7"), ("b", "7")]),
])
def test_every_member_of_a_multi_host_url_is_asked_on_its_own(url, servers):
    found = [conninfo_to_dict(member) for member in members(url)]
    assert [(params["host"], params["port"]) for params in found] == servers
    assert all("target_session_attrs" not in params and params["dbname"] == "posterr" for params in found)
