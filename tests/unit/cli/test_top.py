"""The pure parts of `python -m posterr top` (posterr/cli/top.py): grouping pg_stat_statements rows
by named query, and figures since a reset point."""

from __future__ import annotations

import pytest

from posterr.cli.top import OTHER, ranked


def statement(queryid: int, text: str, calls: int, total: float, *, max_ms: float = 1.0, rows: int = 0,
              hit: int = 0, read: int = 0) -> dict:
    return {"queryid": queryid, "query": text, "calls": calls, "total_exec_time": total, "max_exec_time": max_ms,
            "rows": rows, "shared_blks_hit": hit, "shared_blks_read": read}


ROWS = [
    statement(1, "/* posterr:page_latest */ SELECT p.id FROM posts p WHERE $1", 100, 50.0, max_ms=9.0, rows=1100,
              hit=990, read=10),
    statement(2, "/* posterr:page_latest */ SELECT p.id FROM posts p WHERE $1 AND $2", 10, 30.0, max_ms=20.0,
              rows=110),
    statement(3, "/* posterr:insert_post */ WITH quota AS (...)", 5, 15.0, max_ms=12.0, rows=5, hit=20),
    statement(4, "SELECT pg_sleep($1)", 1, 5.0, max_ms=5.0, rows=1),
    statement(5, "BEGIN", 40, 0.0),
]


def test_statements_are_grouped_by_named_query_and_ranked_by_total_time():
    figures = {f.name: f for f in ranked(ROWS, {}, limit=10)}
    assert [f.name for f in ranked(ROWS, {}, limit=10)] == ["page_latest", "insert_post", OTHER]
    latest = figures["page_latest"]
    assert (latest.calls, latest.total_ms, latest.mean_ms, latest.max_ms) == (110, 80.0, 0.727, 20.0)
    assert latest.rows_per_call == 11.0 and latest.hit_ratio == 0.99 and latest.share == 0.8
    assert figures[OTHER].calls == 41 and figures["insert_post"].hit_ratio == 1.0


@pytest.mark.parametrize("mark, expected_calls, expected_total", [
    ({}, 110, 80.0),  # no reset point: PostgreSQL's own figures
    ({"1": [90, 40.0, 990, 900, 9], "2": [10, 30.0, 110, 0, 0]}, 10, 10.0),  # since the mark
    ({"1": [500, 99.0, 0, 0, 0]}, 110, 80.0),  # statistics reset since the mark: counted whole again
])
def test_figures_since_a_reset_point(mark, expected_calls, expected_total):
    latest = next(f for f in ranked(ROWS, mark, limit=10) if f.name == "page_latest")
    assert (latest.calls, latest.total_ms) == (expected_calls, expected_total)


def test_the_limit_keeps_the_heaviest_named_queries_and_other():
    assert [f.name for f in ranked(ROWS, {}, limit=1)] == ["page_latest", OTHER]


def test_a_query_with_no_calls_since_the_mark_is_left_out():
    mark = {"3": [5, 15.0, 5, 20, 0]}
    assert "insert_post" not in [f.name for f in ranked(ROWS, mark, limit=10)]
