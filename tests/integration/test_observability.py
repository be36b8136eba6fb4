"""Structured logs and /metrics, read as an operator would read them.

Every assertion is local to its test: log lines are read from where the log ended when the test
began and matched by the X-Request-ID the test sent (or the values only it used), and metrics are
compared before and after the test's own requests, never read as absolute values that an earlier
test's traffic could satisfy.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from urllib.parse import urlsplit

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import DATA
from tests.integration.conftest import assert_problem
from tests.integration.workers import distinct, fresh_request, until_several_workers

LOG = DATA / "gunicorn.log"  # the suite app's (app_server) output


class LogWindow:
    """The lines the app writes to its log from now on."""

    def __init__(self, path=LOG):
        self.path = path
        self.start = path.stat().st_size

    def lines(self) -> list[str]:
        with open(self.path, "rb") as log:
            log.seek(self.start)
            return log.read().decode("utf-8").splitlines()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.lines()]

    def wait_for(self, condition, what: str, seconds: float = 10) -> list[dict]:
        """Poll until condition(records) holds (a worker writes its line as it answers)."""
        deadline = time.monotonic() + seconds
        while True:
            records = self.records()
            if condition(records):
                return records
            assert time.monotonic() < deadline, f"no {what} in the log within {seconds} s"
            time.sleep(0.02)  # polling interval


def test_one_json_access_line_per_request_with_its_request_id_and_event_lines(app_server):
    """Each request (each on a connection of its own, the serving worker read from the kernel) has
    exactly one access line, found by the X-Request-ID it sent, naming that worker's pid; and what
    the requests did is logged as events, once each."""
    window = LogWindow()
    tag = uuid.uuid4().hex[:12]
    username = f"obs{tag[:11]}"

    def rid(name: str) -> str:
        return f"obs-{tag}-{name}"

    sent = []  # (request id, method, route, path, status, pid)

    def call(name, method, path, route, status, **kwargs):
        response, pid = fresh_request(method, app_server + path, headers={"X-Request-ID": rid(name)}, **kwargs)
        assert response.status_code == status, response.text
        assert response.headers["X-Request-ID"] == rid(name)
        sent.append((rid(name), method, route, path.split("?")[0], status, pid))
        return response

    alice = call("user", "POST", "/api/users", "/api/users", 201, json={"username": username}).json()["id"]
    post_ids = [call(f"post{n}", "POST", "/api/posts", "/api/posts", 201,
                     json={"user_id": alice, "content": f"n{n}"}).json()["id"] for n in range(5)]
    assert_problem(call("refused", "POST", "/api/posts", "/api/posts", 429, json={"user_id": alice, "content": "six"}),
                   429)
    n = 0
    while len({pid for *_, pid in sent}) < 2:  # until both workers have answered (the pid must differ)
        assert n < 200, "200 fresh connections were all served by one worker"
        call(f"profile{n}", "GET", f"/api/users/{alice}", "/api/users/<user_id>", 200)
        n += 1
    call("unmatched", "GET", f"/api/{tag}", "(unmatched)", 404)
    # A request id that is not sane is replaced by one of the app's, which the log line carries.
    odd, pid = fresh_request("GET", f"{app_server}/healthz", headers={"X-Request-ID": f"no spaces {tag}"})
    replaced = odd.headers["X-Request-ID"]
    assert tag not in replaced
    sent.append((replaced, "GET", "/healthz", "/healthz", 200, pid))

    ids = {request_id for request_id, *_ in sent}
    records = window.wait_for(lambda rs: ids <= {r.get("request_id") for r in rs if r["logger"] == "posterr.access"},
                              "access line for every request")
    for request_id, method, route, path, status, pid in sent:
        access = [r for r in records if r.get("request_id") == request_id and r["logger"] == "posterr.access"]
        assert len(access) == 1, (request_id, access)
        line = access[0]
        assert line | {"duration_ms": 0, "time": "", "user_id": 0} == {
            "time": "", "level": "INFO", "logger": "posterr.access", "message": "request", "request_id": request_id,
            "method": method, "route": route, "path": path, "status": status, "duration_ms": 0,
            "client": "127.0.0.1", "user_id": 0, "pid": pid}, line
        assert isinstance(line["duration_ms"], int | float) and line["duration_ms"] >= 0
    assert all(r["user_id"] == alice for r in records
               if r["logger"] == "posterr.access" and r.get("request_id", "").startswith(rid("post")))
    # The events of what this test did, each once; the window holds nothing else of that kind.
    events = [r for r in records if "event" in r]
    assert [(e["event"], e["user_id"], e["username"], e["request_id"]) for e in events
            if e["event"] == "user_created"] == [("user_created", alice, username, rid("user"))]
    # Each event names the request that caused it, as its access line does.
    assert sorted((e["post_id"], e["request_id"]) for e in events
                  if e["event"] == "post_created" and e["user_id"] == alice) == \
        [(post_id, rid(f"post{n}")) for n, post_id in enumerate(post_ids)]
    assert [(e["user_id"], e["request_id"]) for e in events if e["event"] == "daily_limit_refused"] == \
        [(alice, rid("refused"))]


def test_gunicorns_own_lines_are_json_too(app_server):
    """A request line gunicorn itself refuses (the app never sees it) is logged by gunicorn, in the
    same JSON shape, and every line the log gets meanwhile is one JSON object."""
    window = LogWindow()
    marker = f"Bad{uuid.uuid4().hex}"
    parts = urlsplit(app_server)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: x\r\n{marker} Header: 1\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 400")
    records = window.wait_for(lambda rs: any(marker in r["message"] for r in rs), "gunicorn line for the request")
    line = next(r for r in records if marker in r["message"])
    assert line["logger"] == "gunicorn.error" and line["level"] == "WARNING" and line["time"]
    assert isinstance(line["pid"], int)
    assert all(line.startswith("{") for line in window.lines())


def metrics_of(response: requests.Response) -> dict[tuple[str, frozenset], float]:
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def delta(after, before, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_metrics_count_every_workers_requests_on_every_worker(api, app_server):
    """Requests answered by different workers (fresh connections, the worker read from the kernel)
    are all counted, and /metrics, whichever worker answers it, reports the sum of every worker's."""
    alice = api.new_user("alice")["id"]
    # Every worker calls Redis once first: a worker's first call after a fault test restarted Redis
    # reconnects and bumps the generation, which would make a copy cached meanwhile miss again.
    until_several_workers(lambda: fresh_request("GET", f"{app_server}/api/posts"))
    before = metrics_of(fresh_request("GET", f"{app_server}/metrics")[0])
    # One read first, which misses the cache and fills it, then reads on several workers at once.
    answers = [fresh_request("GET", f"{app_server}/api/users/{alice}")]
    answers += until_several_workers(lambda: fresh_request("GET", f"{app_server}/api/users/{alice}"))
    assert all(response.status_code == 200 for response, _ in answers)
    sent = len(answers)
    for n in range(5):
        api.new_post(alice, f"n{n}")
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "six"}), 429)
    views = until_several_workers(lambda: fresh_request("GET", f"{app_server}/metrics"))
    for response, pid in views:
        after = metrics_of(response)
        route = {"method": "GET", "route": "/api/users/<user_id>"}
        assert delta(after, before, "posterr_http_requests_total", **route, status="200") == sent, pid
        assert delta(after, before, "posterr_http_request_duration_seconds_count", **route) == sent, pid
        assert delta(after, before, "posterr_http_request_duration_seconds_bucket", **route, le="+Inf") == sent, pid
        assert delta(after, before, "posterr_http_requests_total", method="POST", route="/api/posts",
                     status="201") == 5, pid
        assert delta(after, before, "posterr_http_requests_total", method="POST", route="/api/posts",
                     status="429") == 1, pid
        assert delta(after, before, "posterr_limit_refusals_total", limit="daily_posts") == 1, pid
        # One profile read missed the cache, the others (on both workers) were served from it.
        lookups = {result: delta(after, before, "posterr_cache_lookups_total", family="users", result=result)
                   for result in ("hit", "miss")}
        assert lookups == {"hit": sent - 1, "miss": 1}, (pid, lookups)
        assert after[("posterr_db_pool_connections", frozenset({"state": "size"}.items()))] >= 1
    assert len(distinct(views)) >= 2
