"""`python -m posterr cache stats`, against the suite's servers and its running app: per key family,
the keys Redis holds and the hits and misses the app counted."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

import pytest

from posterr.cli import main
from posterr.keys import KEY_FAMILIES
from tests.conftest import ROOT

ROWS = {family.name for family in KEY_FAMILIES} | {"total"}


@pytest.fixture
def stats(servers, app_server, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", servers.database_url)
    monkeypatch.setenv("REDIS_URL", servers.redis_url)

    def run_stats(*options: str, metrics_url: str = f"{app_server}/metrics") -> str:
        out = io.StringIO()
        main(["cache", "stats", "--metrics-url", metrics_url, *options], out=out)
        return out.getvalue()

    return run_stats


def rows(output: str) -> dict[str, list[str]]:
    """Each family's row (and the total's), split into cells: family, keys, memory (number and
    unit), hits, misses, …"""
    return {line.split()[0]: line.split() for line in output.splitlines() if line.split()[:1] and
            line.split()[0] in ROWS}


def lookups(row: list[str]) -> tuple[int, int]:
    return int(row[4]), int(row[5])


def test_stats_show_the_hits_and_misses_each_family_had(stats, api):
    alice = api.new_user("alice")["id"]
    api.new_post(alice)
    before = rows(stats())
    for _ in range(2):  # a miss that stores the document, then a hit
        assert api.get(f"/api/users/{alice}").status_code == 200
        assert api.get("/api/posts").status_code == 200
    output = stats()
    print(output)  # shown by pytest -s, or when the test fails
    after = rows(output)
    for family in ("users", "feeds"):
        hits, misses = (now - then for now, then in zip(lookups(after[family]), lookups(before[family]), strict=True))
        assert (hits, misses) == (1, 1), (family, output)
        assert int(after[family][1]) >= 1, (family, output)
    assert after["quota"][1] == "1" and after["quota"][4:7] == ["—", "—", "—"]
    assert "sampled" in output and "hits and misses unavailable" not in output


def test_without_the_app_stats_show_redis_and_say_why_hits_are_missing(stats, api):
    api.get(f"/api/users/{api.new_user('alice')['id']}")
    output = stats(metrics_url="http://127.0.0.1:9/metrics")  # nothing listens on port 9
    unavailable = [line for line in output.splitlines() if line.startswith("hits and misses unavailable")]
    assert len(unavailable) == 1 and "127.0.0.1:9" in unavailable[0], output
    assert rows(output)["users"][1] == "1" and rows(output)["users"][4:7] == ["?", "?", "?"]


def test_watch_shows_frames_with_rates_until_its_frame_count(stats):
    output = stats("--watch", "0.2", "--frames", "3")
    headers = [line for line in output.splitlines() if line.startswith("family")]
    assert len(headers) == 3 and all("hits/s" in header for header in headers), output
    assert output.count("per second: from the next frame on") == 1
    assert output.count("per second over the last ") == 2, output
    last_total = [line.split() for line in output.splitlines() if line.startswith("total")][-1]
    assert all(rate != "?" and float(rate) >= 0 for rate in last_total[6:8]), output


def test_ctrl_c_ends_a_watch_cleanly(servers, app_server):
    env = {**os.environ, "DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url}
    # A shell without job control starts background jobs with SIGINT ignored, and children inherit
    # that: the command gets Python's own Ctrl-C handler back, as it has at a terminal.
    start = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "sys.argv[0] = 'posterr'; runpy.run_module('posterr', run_name='__main__')")
    watch = subprocess.Popen([sys.executable, "-c", start, "cache", "stats", "--metrics-url",
                              f"{app_server}/metrics", "--watch", "0.2"], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in watch.stdout:  # until a whole frame is out: the command is watching
            if line.startswith("memory: "):
                break
        watch.send_signal(signal.SIGINT)
        _, errors = watch.communicate(timeout=15)
    finally:
        watch.kill()
    assert watch.returncode == 0 and errors == "", errors
