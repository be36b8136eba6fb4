"""A request stuck past POSTERR_REQUEST_TIMEOUT replaces its worker; the others keep answering."""

from __future__ import annotations

import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from tests.conftest import log_records, running_app

ROUTE = "/api/users/<user_id>/following/<target_id>"


def poll(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting for {what}"
        time.sleep(0.05)  # polling interval, not a guess at how long anything takes
    return value


def waiting_on_a_lock(sql, locker_pid: int) -> bool:
    return sql.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY (pg_blocking_pids(pid))",
                       (locker_pid,)).fetchone()[0] > 0


def healthz(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=2, headers={"Connection": "close"}).status_code == 200
    except requests.RequestException:
        return False


def test_a_stuck_request_replaces_its_worker_and_is_logged_and_counted(servers, sql):
    request_id = f"stuck-follow-{os.urandom(4).hex()}"  # the log file outlives this run
    # One worker, a 2 s request timeout (and a body timeout below it, as the settings require), and a
    # statement timeout far beyond it: a follow held behind a row lock is stuck as far as the app can tell.
    with running_app(servers, "gunicorn-watchdog.log", WEB_CONCURRENCY="1", POSTERR_REQUEST_TIMEOUT="2",
                     POSTERR_BODY_TIMEOUT="1", POSTERR_STATEMENT_TIMEOUT_MS="60000") as base:
        alice, bob = (requests.post(f"{base}/api/users", json={"username": name}, timeout=5).json()["id"]
                      for name in ("alice", "bob"))
        with psycopg.connect(servers.database_url) as locker, ThreadPoolExecutor(1) as pool:
            locker.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (alice,))
            stuck = pool.submit(requests.put, f"{base}/api/users/{alice}/following/{bob}", timeout=30,
                                headers={"X-Request-ID": request_id})
            poll(lambda: waiting_on_a_lock(sql, locker.info.backend_pid), 10, "the follow to wait on the lock")
            assert healthz(base), "/healthz must answer while another thread is stuck"
            with pytest.raises(requests.ConnectionError):
                stuck.result()  # the worker exited under it
            locker.rollback()
        [record] = poll(lambda: [r for r in log_records("gunicorn-watchdog.log", {request_id})
                                 if r.get("event") == "request_timeout"], 10, "the request_timeout log line")
        assert record["route"] == ROUTE and "Traceback" not in record["stack"] and record["stack"]
        poll(lambda: healthz(base), 30, "a fresh worker to answer")
        metrics = requests.get(f"{base}/metrics", timeout=5).text
        assert re.search(r"^posterr_request_timeouts_total 1\.0$", metrics, re.MULTILINE), metrics
