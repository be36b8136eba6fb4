"""The operator CLI, against the suite's servers."""

from __future__ import annotations

import re

import pytest

from posterr.cli.cache import KEPT_BY_FLUSH
from posterr.keys import KEY_FAMILIES
from tests.integration.conftest import row_count


@pytest.fixture
def run(run_cli):
    return run_cli


def test_queries_lists_every_named_query_with_its_index(run):
    lines = run("queries").splitlines()
    assert any(line.startswith("page_latest") and "posts_created_at_id_idx" in line for line in lines)
    assert len(lines) >= 17


def test_explain_runs_with_parameters_and_changes_nothing(run, api, sql):
    alice = api.new_user("alice")["id"]
    plan = run("explain", "page_latest", f"author_id={alice}", "limit=11")
    # On an empty table either index on (user_id, …) may win; the parameter is what must show.
    assert f"user_id = '{alice}'::" in plan and "Buffers" in plan and "actual time" in plan
    run("explain", "insert_user", "username=planned")
    assert row_count(sql, "users") == 1
    with pytest.raises(SystemExit, match="no query named"):
        run("explain", "nope")
    with pytest.raises(SystemExit, match="takes no parameter"):
        run("explain", "user_by_id", "wrong=1")


def test_cache_stats_keys_and_flush(run, api, redis_client):
    alice = api.new_user("alice")["id"]
    api.new_post(alice)
    api.get("/api/posts")
    api.get(f"/api/users/{alice}")
    stats = run("cache", "stats")
    assert "hit ratio" in stats and "memory used" in stats and "posterr:quota:*" in stats
    assert "posterr:user:{1}:" in run("cache", "keys", "posterr:user:*")
    flushed = run("cache", "flush")
    assert "deleted 2 cached documents" in flushed
    assert all(family.pattern in flushed for family in KEY_FAMILIES if family.name in KEPT_BY_FLUSH), flushed
    assert list(redis_client.scan_iter("posterr:user:*")) == []
    assert len(list(redis_client.scan_iter("posterr:quota:*"))) == 1


def test_replicas_reports_each_replica_and_fails_when_one_is_not_serving(run, servers, monkeypatch):
    monkeypatch.delenv("DATABASE_REPLICA_URLS", raising=False)
    assert "no replicas configured" in run("replicas")
    unreachable = "postgres://posterr@127.0.0.1:9/posterr?sslmode=disable&connect_timeout=1"
    monkeypatch.setenv("DATABASE_REPLICA_URLS", unreachable)
    with pytest.raises(SystemExit) as exit_:
        run("replicas")
    assert exit_.value.code == 1
    # The primary itself, as behind Patroni where every member is listed, and by another name
    # (localhost): it is told apart as the primary, which is no fault.
    itself = servers.database_url.replace("127.0.0.1", "localhost") + "&target_session_attrs=standby"
    monkeypatch.setenv("DATABASE_REPLICA_URLS", itself)
    shown = run("replicas")
    assert shown.startswith("primary  127.0.0.1:")
    assert re.search(r"^replica  localhost:\d+ +primary +serves no replica reads$", shown, re.MULTILINE), shown
