"""Fail-over under load: no acknowledged write is lost, an unknown outcome is a 503 (never a 201),
and a retry with the same Idempotency-Key gets exactly one post. Every creation acts with its
author's token (the app runs in required mode), looked up on whichever member is primary."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import requests

from tests.cluster.conftest import wait_for
from tests.conftest import RESULTS, ROOT
from tests.ha.conftest import PG_PORTS, ha_script
from tests.integration.conftest import Account

CREATIONS = 40


def create(base: str, author: Account, key: str) -> requests.Response:
    return requests.post(f"{base}/api/posts", json={"content": key}, headers={"Idempotency-Key": key, **author.auth},
                         timeout=30)


def posts_by_content(ha) -> dict[str, list[int]]:
    with ha.connect_primary() as conn:
        rows = conn.execute("SELECT content, id FROM posts").fetchall()
    found: dict[str, list[int]] = {}
    for content, post_id in rows:
        found.setdefault(content, []).append(post_id)
    return found


def waiting_on_locks(ha) -> int:
    with ha.connect_primary() as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").fetchone()[0]


def first_write_after(base: str, author: Account, label: str, seconds: float = 60) -> float:
    """Seconds until a creation is acknowledged (each attempt with a key of its own)."""
    started = time.monotonic()
    attempt = 0

    def acknowledged() -> bool:
        nonlocal attempt
        attempt += 1
        return create(base, author, f"{label}-probe-{attempt}").status_code == 201

    wait_for(acknowledged, seconds, f"a write to be acknowledged after {label}", pause=0.1)
    return time.monotonic() - started


def settle_with_retries(base: str, answers: dict[str, tuple[Account, requests.Response]], ha) -> None:
    """Every 503 retried with its key until acknowledged; then every key names exactly one post, and
    every 201 (first answer or retry) is the post PostgreSQL holds."""
    for key, (author, answer) in answers.items():
        assert answer.status_code in (201, 503), f"{key}: {answer.status_code} {answer.text}"
        if answer.status_code == 503:
            assert answer.headers.get("Retry-After"), key
            answers[key] = (author, wait_for(lambda k=key, a=author: _acknowledged(create(base, a, k)), 30,
                                             f"the retry of {key} to be acknowledged", pause=0.2))
    stored = posts_by_content(ha)
    for key, (_, answer) in answers.items():
        assert stored.get(key) == [answer.json()["id"]], f"{key}: answered {answer.json()['id']}, stored {stored.get(key)}"


def _acknowledged(answer: requests.Response) -> requests.Response | None:
    assert answer.status_code in (201, 503), answer.text
    return answer if answer.status_code == 201 else None


def test_killing_the_primary_with_40_creations_in_flight_loses_no_acknowledged_one(app, ha):
    """40 creations wait on held quota rows; half are let go and the primary is killed at once, so
    some are acknowledged, some are committing and some never started their commit."""
    users = [app.new_account(f"writer{n}") for n in range(8)]
    held_users, released_users = users[:4], users[4:]
    for user in users:  # each gets its quota row for today, which the test then holds
        assert create(app.base, user, f"before-{user.id}").status_code == 201
    keys = {f"creation-{n}": users[n % len(users)] for n in range(CREATIONS)}
    answers: dict[str, tuple[Account, requests.Response]] = {}
    # closing, not the connections' own `with`: that would commit on a connection the kill ended.
    with closing(ha.connect_primary()) as held, closing(ha.connect_primary()) as released, \
            ThreadPoolExecutor(CREATIONS) as pool:
        for locker, locked in ((held, held_users), (released, released_users)):
            locker.autocommit = False
            locker.execute("SELECT used FROM post_quota WHERE user_id = ANY(%s) FOR UPDATE",
                           ([user.id for user in locked],))
        futures = {key: pool.submit(create, app.base, user, key) for key, user in keys.items()}
        wait_for(lambda: waiting_on_locks(ha) >= CREATIONS, 30, f"{CREATIONS} creations to wait on the quota rows")
        released.rollback()
        killed_port = ha_script("kill-primary").strip()
        killed_at = time.monotonic()
        for key, future in futures.items():
            answers[key] = (keys[key], future.result(timeout=60))
    outage = first_write_after(app.base, users[0], "the kill") + (time.monotonic() - killed_at)
    statuses = [answer.status_code for _, answer in answers.values()]
    assert all(answers[key][1].status_code == 503 for key, user in keys.items() if user in held_users)
    before_kill = posts_by_content(ha)
    assert all(f"before-{user.id}" in before_kill for user in users)
    settle_with_retries(app.base, answers, ha)
    RESULTS.append(f"primary killed (port {killed_port}) with {CREATIONS} creations in flight, 20 of them just "
                   f"released from a row lock: {statuses.count(201)} x 201, {statuses.count(503)} x 503, "
                   f"0 other; first acknowledged write {outage:.1f} s after the kill; every 503 retried with its key: "
                   f"{CREATIONS} keys, {CREATIONS} posts, every 201 stored")


def readyz_shows_primary(base: str, port: int) -> bool:
    """Whether /readyz names the member on `port` the primary. It lists the members in the order of
    DATABASE_REPLICA_URLS (PG_PORTS), without names; while the old primary steps down the ping may
    fail, and /readyz answers 503 without the list: not yet."""
    answer = requests.get(f"{base}/readyz", headers={"Connection": "close"}, timeout=10)
    return answer.status_code == 200 and answer.json()["replicas"][PG_PORTS.index(port)]["state"] == "primary"


def test_a_switchover_with_reads_and_writes_going_on(app, ha):
    users = [app.new_account(f"switch{n}") for n in range(4)]
    before = ha.primary_port()
    stop = threading.Event()
    answers: dict[str, tuple[Account, requests.Response]] = {}
    reads: list[int] = []

    def write(user: Account) -> None:
        n = 0
        while not stop.is_set():
            key = f"switch-{user.id}-{n}"
            answers[key] = (user, create(app.base, user, key))
            n += 1

    def read(user: Account) -> None:
        while not stop.is_set():
            for path in ("/api/posts", f"/api/users/{user.id}", f"/api/posts?author_id={user.id}"):
                reads.append(requests.get(app.base + path, timeout=30).status_code)

    with ThreadPoolExecutor(8) as pool:
        running = [pool.submit(write, user) for user in users] + [pool.submit(read, user) for user in users]
        try:
            wait_for(lambda: len(answers) >= 20, 30, "writes before the switchover")
            ha_script("switchover")
            after = wait_for(lambda: (port := ha.primary_port()) != before and port, 30, "a new primary")
            wait_for(lambda: readyz_shows_primary(app.base, after), 30, "/readyz to show the new primary")
            written_before = len(answers)
            wait_for(lambda: sum(1 for _, a in list(answers.values())[written_before:] if a.status_code == 201) >= 20,
                     60, "writes acknowledged by the new primary")
        finally:
            stop.set()  # a failed wait stops the clients too, so that it fails rather than hangs
        for future in running:
            future.result(timeout=60)
    assert set(reads) <= {200, 503}, sorted(set(reads))
    statuses = [answer.status_code for _, answer in answers.values()]
    settle_with_retries(app.base, answers, ha)
    RESULTS.append(f"switchover {before} -> {after} under 4 writers and 4 readers: {len(statuses)} creations "
                   f"({statuses.count(201)} x 201, {statuses.count(503)} x 503, every 503 retried with its key, "
                   f"every 201 stored), {len(reads)} reads ({reads.count(200)} x 200, {reads.count(503)} x 503)")


def test_losing_the_replicas_makes_writes_wait_then_503_while_reads_go_on(app, ha):
    user = app.new_account("lonely")
    primary = ha.primary_port()
    replicas = [port for port in ha_script("members").split() if port != primary]
    try:
        ha_script("stop-member", replicas[0])
        first = create(app.base, user, "one-replica-left")
        # The other replica becomes the synchronous standby; writes may wait for that, not fail for long.
        answers = {"one-replica-left": (user, first)}
        if first.status_code == 503:
            first_write_after(app.base, user, "one replica lost")
        ha_script("stop-member", replicas[1])
        started = time.monotonic()
        unconfirmed = create(app.base, user, "no-replica-left")
        waited = time.monotonic() - started
        assert unconfirmed.status_code == 503, unconfirmed.text
        assert unconfirmed.headers["Retry-After"]
        assert requests.get(f"{app.base}/api/posts?author_id={user.id}", timeout=30).status_code == 200
        assert requests.get(f"{app.base}/api/users/{user.id}", timeout=30).status_code == 200
        answers["no-replica-left"] = (user, unconfirmed)
    finally:
        for port in replicas:
            ha_script("start-member", port)
    settle_with_retries(app.base, answers, ha)
    RESULTS.append(f"replicas lost: with one left writes went on; with none, a creation was answered 503 after "
                   f"{waited:.1f} s (the commit deadline) while reads were 200; once they were back its retry "
                   "with the same key got exactly one post")


def test_operators_see_every_member_and_readyz_shows_the_primary_among_them(app, ha):
    primary = ha.primary_port()
    roles = sorted((f"127.0.0.1:{port}", "primary" if port == primary else "ok") for port in PG_PORTS)
    # Every worker has checked the members: the primary's own entry is `primary`, not `down`. /readyz
    # lists them in the order of DATABASE_REPLICA_URLS, with no names (the command below has them).
    states = ["primary" if port == primary else "ok" for port in PG_PORTS]
    wait_for(lambda: [found["state"] for found in requests.get(
        f"{app.base}/readyz", headers={"Connection": "close"}, timeout=10).json()["replicas"]] == states, 30,
        "/readyz to show the primary's entry as primary and the standbys as ok")
    # Exit status 0: the primary among the replica URLs is no fault (a replica not serving would be).
    shown = subprocess.run([sys.executable, "-m", "posterr", "replicas"], check=True, cwd=ROOT, capture_output=True,
                           text=True, timeout=60, env={**os.environ, "DATABASE_URL": ha.database_url,
                                            "DATABASE_REPLICA_URLS": ha.replica_url, "REDIS_URL": ha.redis_url})
    members = [line.split() for line in shown.stdout.splitlines() if line.startswith("member")]
    assert sorted((line[1], line[2]) for line in members) == sorted(
        (f"127.0.0.1:{port}", "primary" if port == primary else "standby") for port in PG_PORTS), shown.stdout
    assert all(line[3] == "timeline" and line[4].rstrip(",").isdigit() for line in members), shown.stdout
    replicas = [line.split()[:3] for line in shown.stdout.splitlines() if line.startswith("replica")]
    assert sorted((line[1], line[2]) for line in replicas) == roles, shown.stdout
