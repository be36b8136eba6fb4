"""Reads from a streaming replica that applies every commit 2 s late (recovery_min_apply_delay), through
three app instances: read-your-writes per client, bounded staleness, and the primary taking over when
the replica stops or falls behind (posterr/replicas.py). Clients are told apart by X-Forwarded-For
(the instances trust 127.0.0.1 as a proxy), as the rate limit tells them apart."""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import re
import string
import time
from contextlib import ExitStack
from unittest.mock import ANY

import pytest
import requests

from posterr.cli import main
from posterr.keys import POSITIONS_SETTLING_KEY
from posterr.routes.ops import OPENAPI_FILE
from tests.cluster.conftest import wait_for
from tests.conftest import DATA, REPLICA_DELAY, RESULTS, log_records, running_app
from tests.integration.conftest import APP_WORKERS

APPLY_DELAY = 2.0  # seconds: the replica's recovery_min_apply_delay
# POSTERR_REPLICA_MAX_LAG here: above the apply delay, so that the replica serves throughout (2 s
# behind after every write) instead of flickering between `ok` and `lagging` around each commit.
MAX_LAG = 4.0
_clients = itertools.count(1)


@pytest.fixture(scope="module")
def replica(servers):
    if not servers.owned:
        pytest.skip("needs the suite's own PostgreSQL (DATABASE_URL is set): it grows a replica of it")
    started_here = servers.replica_url is None
    servers.start_replica(f"{APPLY_DELAY:g}s") if started_here else None
    if REPLICA_DELAY and REPLICA_DELAY != f"{APPLY_DELAY:g}s":
        pytest.skip(f"the suite's replica applies commits {REPLICA_DELAY} late; these tests need {APPLY_DELAY:g}s")
    yield servers
    if started_here:
        servers.stop_replica()
        servers.replica_url = None


@pytest.fixture(scope="module")
def instances(replica):
    with ExitStack() as stack:
        yield [stack.enter_context(running_app(replica, f"replica-app-{n}.log", POSTERR_TRUSTED_PROXIES="127.0.0.1",
                                               DATABASE_REPLICA_URLS=replica.replica_url,
                                               POSTERR_REPLICA_MAX_LAG=str(MAX_LAG)))
               for n in (1, 2, 3)]


class Client:
    """One client of the service (its own X-Forwarded-For address), on fresh connections."""

    def __init__(self):
        number = next(_clients)
        self.address = f"10.9.{number // 250}.{number % 250 + 1}"

    def call(self, method: str, base: str, path: str, **kwargs) -> requests.Response:
        headers = {"X-Forwarded-For": self.address, "Connection": "close"}
        return requests.request(method, base + path, headers=headers, timeout=10, **kwargs)

    def get(self, base: str, path: str) -> requests.Response:
        response = self.call("GET", base, path)
        assert response.status_code == 200, response.text
        return response

    def create(self, base: str, path: str, body: dict) -> dict:
        response = self.call("POST", base, path, json=body)
        assert response.status_code == 201, response.text
        return response.json()


def reads(base: str) -> dict[str, float]:
    """This instance's reads that a replica may serve, by target (all its workers)."""
    text = requests.get(base + "/metrics", timeout=5).text
    return {target: float(value) for target, value in
            re.findall(r'^posterr_db_reads_total\{target="(\w+)"\} (\S+)$', text, re.MULTILINE)}


def every_worker_says(base: str, log_name: str, *states: str) -> bool:
    """Whether 8 /readyz on fresh connections all say the replicas are in `states`, and both workers
    answered some of them (by the pid of their access lines): each worker checks on its own."""
    request_ids = {f"replica-state-{os.urandom(6).hex()}" for _ in range(8)}
    for request_id in request_ids:
        answer = requests.get(base + "/readyz", timeout=5, headers={"Connection": "close", "X-Request-ID": request_id})
        if tuple(replica["state"] for replica in answer.json()["replicas"]) != states:
            return False
    return len({record["pid"] for record in log_records(log_name, request_ids)}) == APP_WORKERS


def wait_until_every_worker_says(instances, state: str) -> None:
    for number, base in enumerate(instances, 1):
        wait_for(lambda b=base, n=number: every_worker_says(b, f"replica-app-{n}.log", state), 30,
                 f"every worker of {base} to find the replica {state}")


def wait_until_serving(instances) -> None:
    wait_until_every_worker_says(instances, "ok")


def word() -> str:
    """A keyword no other test wrote."""
    return "".join(random.choice(string.ascii_lowercase) for _ in range(12))


def current_from_the_primary(instances, reader: Client, path: str, post_id: int) -> None:
    """Every instance shows the post to a client that did not write it, with no error: from the primary."""
    for base in instances:
        before = reads(base)
        assert post_id in post_ids(reader.get(base, path))
        assert reads(base).get("primary", 0) == before.get("primary", 0) + 1


def post_ids(response: requests.Response) -> set[int]:
    return {post["id"] for post in response.json()}


def test_a_client_reads_its_writes_through_every_instance_at_once(replica, instances):
    first, second, third = instances
    writer, other = Client(), Client()
    keyword = word()
    wait_until_serving(instances)
    # Replay paused: the replica keeps serving (until it is MAX_LAG behind) and surely lacks what
    # comes next, however slow this machine is today.
    replica.pause_replica()
    try:
        author = writer.create(first, "/api/users", {"username": word()})
        post = writer.create(first, "/api/posts", {"user_id": author["id"], "content": f"replicated {keyword}"})
        # Another client's read in between is served by the replica, which lacks the post.
        before = reads(second)
        assert post["id"] not in post_ids(other.get(second, f"/api/posts?keyword={keyword}"))
        assert reads(second).get("replica", 0) == before.get("replica", 0) + 1
        # The writer, through the two other instances, sees everything it wrote.
        search = f"/api/posts?author_id={author['id']}&keyword={keyword}"
        for base in (second, third):
            before = reads(base)
            assert post["id"] in post_ids(writer.get(base, search))
            assert post["id"] in post_ids(writer.get(base, "/api/posts"))
            assert post["id"] in post_ids(writer.get(base, f"/api/posts?author_id={author['id']}"))
            assert writer.get(base, f"/api/users/{author['id']}").json()["posts_count"] == 1
            found = writer.get(base, f"/api/users?username={author['username']}").json()
            assert [user["id"] for user in found] == [author["id"]]
            after = reads(base)
            assert after.get("primary", 0) == before.get("primary", 0) + 2, (before, after)  # search, lookup
    finally:
        replica.resume_replica()
    RESULTS.append("replica replay paused: the writer read its post at once through 2 other instances (10 reads, "
                   "stale: 0, the 4 that a replica may serve from the primary) while another client's read there "
                   "came from the replica and lacked it")


def test_another_client_sees_a_post_once_the_replica_applies_it(instances):
    writer, other = Client(), Client()
    keyword = word()
    wait_until_serving(instances)
    author = writer.create(instances[0], "/api/users", {"username": word()})
    post = writer.create(instances[0], "/api/posts", {"user_id": author["id"], "content": f"replicated {keyword}"})
    written_at = time.monotonic()
    # 2 s (the replica's delay), plus a margin: the replica serves the other client meanwhile.
    seen = wait_for(lambda: post["id"] in post_ids(other.get(instances[2], f"/api/posts?keyword={keyword}"))
                    and time.monotonic(), APPLY_DELAY + 3, "the other client to see the post")
    assert seen - written_at <= APPLY_DELAY + 1.5
    totals = [reads(base) for base in instances]
    RESULTS.append(f"replica {APPLY_DELAY:g} s late: another client saw a new post after {seen - written_at:.2f} s; "
                   f"reads by target so far, per instance: {totals}")


def test_readiness_lists_the_replica_as_the_openapi_document_says(instances):
    wait_until_serving(instances)
    schema = json.loads(OPENAPI_FILE.read_text())["components"]["schemas"]["Readiness"]["properties"]["replicas"]
    described = schema["items"]["properties"]
    for base in instances:
        (replica,) = requests.get(base + "/readyz", timeout=5).json()["replicas"]
        assert set(schema["items"]["required"]) <= replica.keys() <= described.keys()
        assert replica["state"] in described["state"]["enum"]
        assert replica["state"] == "ok" and 0 <= replica["lag_seconds"] <= MAX_LAG


def test_the_primary_listed_among_the_replicas_is_shown_as_the_primary(replica):
    """Behind Patroni every member is in DATABASE_REPLICA_URLS (asking for a standby) and one of them
    leads: every worker shows that one as `primary`, not `down`, even under another name, logs no
    replica_down for it, and the real replica beside it serves."""
    itself = replica.database_url.replace("127.0.0.1", "localhost") + "&target_session_attrs=standby"
    with running_app(replica, "replica-app-members.log", DATABASE_REPLICA_URLS=f"{itself},{replica.replica_url}",
                     POSTERR_REPLICA_MAX_LAG=str(MAX_LAG)) as base:
        wait_for(lambda: every_worker_says(base, "replica-app-members.log", "primary", "ok"), 30,
                 "every worker to show the primary's entry as primary and the replica as ok")
        ready = requests.get(base + "/readyz", timeout=5)
        assert ready.json()["replicas"] == [{"state": "primary", "lag_seconds": None}, {"state": "ok", "lag_seconds": ANY}]
        # No name, address or driver text: those are in the log and `python -m posterr replicas`.
        assert "localhost" not in ready.text and "127.0.0.1" not in ready.text and "error" not in ready.text
    assert '"replica_down"' not in (DATA / "replica-app-members.log").read_text()


def test_a_client_that_wrote_nothing_is_served_by_the_replica(instances):
    wait_until_serving(instances)
    reader = Client()
    for base in instances:
        before = reads(base)
        reader.get(base, "/api/posts?keyword=anything")
        reader.get(base, "/api/users?limit=5")
        after = reads(base)
        assert after.get("replica", 0) == before.get("replica", 0) + 2, (before, after)
        assert after.get("primary", 0) == before.get("primary", 0)


def test_a_stopped_replica_leaves_every_read_to_the_primary_until_it_is_back(replica, instances):
    wait_until_serving(instances)
    writer, reader = Client(), Client()
    author = writer.create(instances[0], "/api/users", {"username": word()})
    replica.stop_replica()
    try:
        post = writer.create(instances[0], "/api/posts", {"user_id": author["id"], "content": "while it is down"})
        current_from_the_primary(instances, reader, f"/api/posts?author_id={author['id']}&keyword=down", post["id"])
        # The driver's error names the replica's address: it goes to the log, never to /readyz.
        wait_for(lambda: requests.get(instances[0] + "/readyz", timeout=5).json()["replicas"]
                 == [{"state": "down", "lag_seconds": None}], 30, "/readyz to show the replica down, and nothing more")
    finally:
        replica.start_replica(f"{APPLY_DELAY:g}s")
    wait_until_serving(instances)
    before = reads(instances[1])
    reader.get(instances[1], "/api/posts?keyword=down")
    assert reads(instances[1]).get("replica", 0) == before.get("replica", 0) + 1


def test_a_replica_behind_the_limit_gets_no_reads_until_it_catches_up(replica, instances):
    wait_until_serving(instances)
    writer, reader = Client(), Client()
    author = writer.create(instances[0], "/api/users", {"username": word()})
    replica.pause_replica()
    try:
        post = writer.create(instances[0], "/api/posts", {"user_id": author["id"], "content": "replay is paused"})
        wait_until_every_worker_says(instances, "lagging")
        current_from_the_primary(instances, reader, f"/api/posts?author_id={author['id']}&keyword=paused", post["id"])
    finally:
        replica.resume_replica()
    wait_until_serving(instances)
    before = reads(instances[2])
    assert post["id"] in post_ids(reader.get(instances[2], f"/api/posts?author_id={author['id']}&keyword=paused"))
    assert reads(instances[2]).get("replica", 0) == before.get("replica", 0) + 1


def test_top_shows_the_replica_in_a_section_of_its_own(replica, instances, monkeypatch, tmp_path):
    """The replica's own pg_stat_statements: the named queries it served (it loads the library and
    has the extension, which the primary's migration made and streaming copied)."""
    wait_until_serving(instances)
    reader = Client()
    reader.get(instances[0], "/api/posts?keyword=sections")  # a read a replica may serve
    monkeypatch.setenv("DATABASE_URL", replica.database_url)
    monkeypatch.setenv("REDIS_URL", replica.redis_url)
    monkeypatch.setenv("DATABASE_REPLICA_URLS", replica.replica_url)
    out = io.StringIO()
    main(["top", "--json", "--limit", "100", "--mark-dir", str(tmp_path)], out=out)
    sections = json.loads(out.getvalue())["servers"]
    assert [section["role"] for section in sections] == ["primary", "replica"]
    assert "error" not in sections[1], sections[1]
    assert "page_latest" in {query["name"] for query in sections[1]["queries"]}


def test_after_redis_loses_its_data_a_writer_still_reads_its_writes(replica, instances, redis_client):
    """A flush drops the writer's position: until every write before it is on every replica allowed
    to serve, reads go to the primary (the positions' holder tells the loss); then the replica serves."""
    wait_until_serving(instances)
    writer, other = Client(), Client()
    keyword = word()
    replica.pause_replica()  # the replica surely lacks what comes next
    try:
        author = writer.create(instances[0], "/api/users", {"username": word()})
        post = writer.create(instances[0], "/api/posts", {"user_id": author["id"], "content": f"flushed {keyword}"})
        redis_client.flushdb()
        for base in instances[1:]:
            before = reads(base)
            assert post["id"] in post_ids(writer.get(base, f"/api/posts?keyword={keyword}"))
            assert reads(base).get("primary", 0) == before.get("primary", 0) + 1
    finally:
        replica.resume_replica()
    wait_for(lambda: not redis_client.exists(POSITIONS_SETTLING_KEY), 15, "the settling time to end")
    wait_until_serving(instances)
    before = reads(instances[2])
    assert post["id"] in post_ids(other.get(instances[2], f"/api/posts?keyword={keyword}"))
    assert reads(instances[2]).get("replica", 0) == before.get("replica", 0) + 1
