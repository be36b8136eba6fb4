"""What every response shares: the problem+json shape, X-Request-ID, CORS, health endpoints."""

from __future__ import annotations

import json
import re
import socket

import pytest

from posterr import logs
from posterr.app import create_app
from posterr.config import Settings
from posterr.db import server_name
from posterr.routes.ops import OPENAPI_FILE
from tests.conftest import TEST_SECRET_KEY
from tests.integration.conftest import assert_problem, row_count


def test_unknown_route_is_404_problem(api):
    assert_problem(api.get("/api/nothing-here"), 404)
    assert_problem(api.get("/not-api"), 404)


def test_wrong_method_is_405_problem_with_allow(api):
    response = api.request("PATCH", "/api/users")
    assert_problem(response, 405)
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST"}


@pytest.mark.parametrize("given", ["abc-123", "a" * 128, "trace:1.2_3"])
def test_sane_request_id_is_kept(api, given):
    assert api.get("/healthz", headers={"X-Request-ID": given}).headers["X-Request-ID"] == given


@pytest.mark.parametrize("given", ["", "a" * 129, "bad id", "<script>", "ü"])
def test_other_request_ids_are_replaced(api, given):
    kept = api.get("/healthz", headers={"X-Request-ID": given.encode()}).headers["X-Request-ID"]
    assert kept != given and 1 <= len(kept) <= 128


def test_every_error_carries_a_request_id(api):
    for response in (api.get("/nope"), api.request("PATCH", "/api/users"), api.get("/api/users/99")):
        assert response.headers["X-Request-ID"]


def test_cors_preflight_and_exposed_headers(api):
    preflight = api.request("OPTIONS", "/api/posts", headers={
        "Origin": "http://frontend.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "content-type" in preflight.headers["Access-Control-Allow-Headers"].lower()
    response = api.get("/api/users", headers={"Origin": "http://frontend.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    exposed = {h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"link", "retry-after", "ratelimit", "ratelimit-policy", "x-request-id", "location", "www-authenticate",
                       "search-scope"}
    assert_problem(api.request("OPTIONS", "/api/nothing-here"), 404)


def test_healthz_and_readyz(api, servers):
    assert api.get("/healthz").json() == {"status": "ok"}
    ready = api.get("/readyz")
    answer = ready.json()
    # With the suite's replica (POSTERR_TEST_REPLICA_DELAY, `make test-variants`) every app reads from
    # it, and /readyz adds its entry (docs/operations.md); its state depends on the moment, its shape not.
    replicas = answer.pop("replicas", None)
    assert answer == {"postgres": "ok", "redis": "ok"}
    assert [set(replica) for replica in replicas or []] == ([{"state", "lag_seconds"}] if servers.replica_url else [])
    # Statuses only: nothing of the topology (the servers' names or addresses) for anyone who asks.
    for url in filter(None, (servers.database_url, servers.replica_url)):
        assert server_name(url) not in ready.text


def test_every_route_and_every_kind_of_answer_carries_the_edge_headers(api):
    """Each operation of the OpenAPI document (a new route is documented, so it cannot be left out)
    answered once, plus /metrics and the answers no route gives (404, 405, a preflight): every one
    has nosniff and a request id."""
    user, other = api.new_user("edgeann"), api.new_user("edgebob")
    post = api.new_post(user["id"])
    bodies = {"/api/users": {"username": "edgecid"}, "/api/posts": {"user_id": user["id"], "content": "x"},
              "/api/posts/{id}/repost": {"user_id": other["id"]},
              "/api/posts/{id}/replies": {"user_id": other["id"], "content": "re"}}
    answers = []
    for template, item in api.get("/api/openapi.json").json()["paths"].items():
        path = template.replace("{id}", str(post["id"] if template.startswith("/api/posts/") else user["id"]))
        path = path.replace("{target_id}", str(other["id"]))
        for method in ("get", "post", "put", "delete"):
            if method in item:
                json = bodies.get(template) if method == "post" else None
                answers.append((f"{method} {template}", api.request(method.upper(), path, json=json)))
    answers += [("metrics", api.get("/metrics")), ("no route", api.get("/api/nothing-here")),
                ("no method", api.request("PATCH", "/api/posts")),
                ("preflight", api.request("OPTIONS", "/api/posts", headers={"Origin": "https://x"}))]
    assert {response.status_code for _, response in answers} >= {200, 201, 204, 404, 405}
    for asked, response in answers:
        assert response.status_code < 500, (asked, response.text)
        assert response.headers["X-Content-Type-Options"] == "nosniff", asked
        assert response.headers["X-Request-ID"], asked


WILDCARD = re.compile(r"<[^>]*>|\{[^}]*\}")  # Bottle's <user_id>, OpenAPI's {id}: both {}


def served_operations(servers, monkeypatch) -> set[tuple[str, str]]:
    """(path, method) of every route the app installs, each wildcard as {} (WILDCARD);
    read from an app built here as gunicorn builds it (its pools made, never opened)."""
    monkeypatch.setattr(logs, "configure", lambda _level: None)  # the suite's own logging stays
    app = create_app(Settings.from_env({"DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url,
                                        "POSTERR_SECRET_KEY": TEST_SECRET_KEY}))
    return {(WILDCARD.sub("{}", route.rule), route.method.lower()) for route in app.routes}


def test_openapi_document_describes_exactly_the_routes_served(api, servers, monkeypatch):
    """Both ways: an undocumented route and a documented operation that no route serves both fail.
    Only the CORS preflights are left out, one per /api path (docs/api.md says so)."""
    document = api.get("/api/openapi.json").json()
    assert document == json.loads(OPENAPI_FILE.read_bytes())  # served as committed
    assert document["openapi"].startswith("3.1")
    documented = {(WILDCARD.sub("{}", path), method) for path, item in document["paths"].items()
                  for method in item if method in ("get", "put", "post", "delete", "options", "head", "patch", "trace")}
    served = served_operations(servers, monkeypatch)
    preflights = {(path, method) for path, method in served if method == "options"}
    assert preflights == {(path, "options") for path, _ in served if path.startswith("/api/")}
    assert served - preflights == documented


def test_a_chunked_body_is_bounded_like_any_other(api, sql):
    def chunks(count: int, size: int = 8192):
        for _ in range(count):
            yield b" " * size  # JSON whitespace: only the size can make it fail

    assert_problem(api.post("/api/users", data=chunks(1024), headers={"Content-Type": "application/json"}), 413)
    created = api.post("/api/users", data=iter([b'{"username": ', b'"chunky"}']),
                       headers={"Content-Type": "application/json"})
    assert created.status_code == 201, created.text
    assert row_count(sql, "users") == 1


def test_a_malformed_chunked_body_is_a_400_problem(app_server, sql):
    port = int(app_server.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /api/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:300]
    assert b"application/problem+json" in answer
    assert row_count(sql, "users") == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "text/plain; charset=utf-8",
                                          "application/x-www-form-urlencoded", "multipart/form-data; boundary=b",
                                          "application/merge-patch+json"])
def test_a_body_that_is_not_application_json_is_415(api, sql, content_type):
    """Issue 37, finding 9: a page on any origin may POST text/plain, a form or multipart with no
    preflight; only application/json bodies are taken, so a browser must ask first (CORS)."""
    headers = {"Origin": "https://elsewhere.example"} | ({"Content-Type": content_type} if content_type else {})
    for path in ("/api/users", "/api/posts", "/api/tokens"):
        response = api.post(path, data=b'{"username": "sneaky", "user_id": 1, "content": "x"}', headers=headers)
        body = assert_problem(response, 415)
        assert body["type"] == "/problems/unsupported-media-type" and "application/json" in body["detail"]
        assert response.headers["Accept-Post"] == "application/json"
    assert row_count(sql, "users") == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON;charset=UTF-8"])
def test_application_json_with_parameters_is_json(api, content_type):
    response = api.post("/api/users", data=b'{"username": "paramed"}', headers={"Content-Type": content_type})
    assert response.status_code == 201, response.text


def test_checks_of_the_body_in_order_413_then_415_then_400(api, sql):
    """A body over 64 KiB is 413 whatever its type (announced or streamed); a body of another type is
    415 before it is parsed; only a JSON body is judged malformed (400)."""
    big = b" " * (64 * 1024 + 1)
    assert_problem(api.post("/api/users", data=big, headers={"Content-Type": "text/plain"}), 413)
    assert_problem(api.post("/api/users", data=iter([big]), headers={"Content-Type": "text/plain"}), 413)
    assert_problem(api.post("/api/users", data=b"{oops", headers={"Content-Type": "text/plain"}), 415)
    assert_problem(api.post("/api/users", data=b"{oops", headers={"Content-Type": "application/json"}), 400)
    assert row_count(sql, "users") == 0


def send_oversized_body(base: str, size: int) -> bytes:
    """POST `size` bytes on a raw socket, as a client that keeps sending whatever the server does
    (requests would hide a reset: urllib3 swallows the broken pipe), then read the answer."""
    port = int(base.rsplit(":", 1)[1])
    head = (f"POST /api/posts HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        try:
            for start in range(0, size, 16 * 1024):
                sock.sendall(b"x" * min(16 * 1024, size - start))
        except OSError:
            pass  # the server stopped reading: its answer must still be readable
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("size", [64 * 1024 + 1, 1024 * 1024, 4 * 1024 * 1024])
def test_an_oversized_body_gets_its_413_not_a_dropped_connection(app_server, sql, size):
    """The server reads (and drops) the rest of the body before answering, so a client still
    sending reads the problem instead of a reset."""
    for _ in range(10):
        answer = send_oversized_body(app_server, size)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"application/problem+json" in answer
    assert row_count(sql, "posts") == 0


def test_made_up_methods_add_no_metric_series(api, app_server):
    """Issue 37, finding 1: gunicorn takes any upper-case token as a method; /metrics must not grow a
    series for each."""
    host, port = app_server.removeprefix("http://").split(":")
    for n in range(20):
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(f"M{n:017d} /x HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            assert conn.recv(64).startswith(b"HTTP/1.1 ")
    text = api.get("/metrics").text
    assert 'method="OTHER"' in text and "M00000000000000000" not in text
