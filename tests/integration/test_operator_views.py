"""`python -m posterr top` and `activity` against the suite's servers (started with pg_stat_statements
loaded, as scripts/services.sh starts every server): named queries by name, figures since a reset
point, a request held behind a row lock seen waiting in `activity` and, once done, in `top`."""

from __future__ import annotations

import io
import json
import threading
import time

import psycopg
import pytest
import requests

from posterr.cli import main

HELD_MS = 150  # how long the test keeps a creation waiting on its lock (measured by PostgreSQL)


@pytest.fixture
def run(servers, monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", servers.database_url)
    monkeypatch.setenv("REDIS_URL", servers.redis_url)
    monkeypatch.delenv("DATABASE_REPLICA_URLS", raising=False)

    def run_cli(*argv: str) -> str:
        out = io.StringIO()
        extra = ["--mark-dir", str(tmp_path)] if argv[0] == "top" else []
        main([*argv, *extra], out=out)
        return out.getvalue()

    return run_cli


def top(run, *options: str) -> dict[str, dict]:
    """The primary's named queries as `top --json` shows them, by name."""
    document = json.loads(run("top", "--json", "--limit", "100", *options))
    return {row["name"]: row for row in document["servers"][0]["queries"]}


def waited_behind(conn, holder_pid: int) -> float:
    """How long (s) the longest statement blocked by `holder_pid` has been waiting; 0 for none."""
    return conn.execute("SELECT coalesce(max(extract(epoch FROM now() - query_start)), 0) FROM pg_stat_activity "
                        "WHERE %s = ANY(pg_blocking_pids(pid))", (holder_pid,)).fetchone()[0]


def test_top_lists_our_named_queries_by_name(run, api):
    alice = api.new_user("alice")["id"]
    api.new_post(alice, "hello")
    api.get("/api/posts?start_date=2000-01-01")
    shown = top(run)
    assert {"insert_user", "insert_post", "page_latest", "posts_by_ids"} <= shown.keys()
    assert "other" in shown  # the suite's own statements (TRUNCATE, …)
    assert shown["insert_post"]["calls"] >= 1 and 0 < shown["insert_post"]["share"] <= 1
    table = run("top")
    assert "named queries by total time" in table and "insert_post" in table


def test_top_since_the_reset_point_counts_only_what_came_after(run, api):
    alice = api.new_user("alice")["id"]
    api.new_post(alice, "before the mark")
    assert "reset point set" in run("top", "--mark")
    api.new_post(alice, "after the mark")
    since = top(run, "--since")
    assert since["insert_post"]["calls"] == 1
    assert "insert_user" not in since
    assert top(run)["insert_post"]["calls"] >= 2


def test_a_request_held_behind_a_row_lock_shows_in_activity_then_in_top(run, api, app_server, servers):
    alice = api.new_user("alice")["id"]
    answers: list[int] = []
    with psycopg.connect(servers.database_url) as holder, psycopg.connect(servers.database_url,
                                                                          autocommit=True) as watcher:
        holder.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (alice,))
        holder_pid = holder.info.backend_pid
        sender = threading.Thread(target=lambda: answers.append(requests.post(
            f"{app_server}/api/posts", json={"user_id": alice, "content": "held"}, timeout=30).status_code))
        sender.start()
        try:
            deadline = time.monotonic() + 20
            while waited_behind(watcher, holder_pid) < HELD_MS / 1000:  # by PostgreSQL's clock
                assert time.monotonic() < deadline, "the creation never waited on the lock"
            now = json.loads(run("activity", "--json"))["connections"]
            held = [c for c in now if holder_pid in c["blocked_by"]]
            assert [c["query"] for c in held] == ["insert_post"], now
            assert held[0]["wait"].startswith("Lock:") and held[0]["seconds"] >= HELD_MS / 1000
            assert "insert_post" in run("activity")
        finally:
            holder.rollback()
            sender.join(timeout=30)
    assert answers == [201]
    assert top(run)["insert_post"]["max_ms"] >= HELD_MS


def test_top_without_pg_stat_statements_says_how_to_enable_it(run, servers, sql, monkeypatch):
    sql.execute("DROP DATABASE IF EXISTS posterr_no_stats")
    sql.execute("CREATE DATABASE posterr_no_stats")
    try:
        monkeypatch.setenv("DATABASE_URL", servers.database_url.rsplit("/", 1)[0] + "/posterr_no_stats")
        out = io.StringIO()
        with pytest.raises(SystemExit) as exited:
            main(["top"], out=out)
        assert exited.value.code == 2
        assert "pg_stat_statements is not available" in out.getvalue()
        assert "shared_preload_libraries" in out.getvalue()
    finally:
        sql.execute("DROP DATABASE posterr_no_stats")
