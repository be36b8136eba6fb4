"""The pure part of `python -m posterr activity` (posterr/cli/activity.py): how a connection is
described, named by the query it runs."""

from __future__ import annotations

import pytest

from posterr.cli.activity import described


@pytest.mark.parametrize("row, query, wait, blocked", [
    ({"query": "/* posterr:insert_post */ WITH quota AS (\n  INSERT ...", "wait_event_type": "Lock",
      "wait_event": "transactionid", "blocked_by": [42]}, "insert_post", "Lock:transactionid", [42]),
    ({"query": "SELECT   1\n FROM users  FOR UPDATE", "wait_event_type": None, "wait_event": None, "blocked_by": []},
     "other: SELECT 1 FROM users FOR UPDATE", "", []),
])
def test_a_connection_is_named_by_its_query(row, query, wait, blocked):
    base = {"pid": 7, "state": "active", "seconds": 0.25, "client": "127.0.0.1", "application_name": ""}
    shown = described({**base, **row})
    assert (shown["query"], shown["wait"], shown["blocked_by"], shown["seconds"]) == (query, wait, blocked, 0.25)
