"""Structured logs and /metrics, read as an operator would read them."""

from __future__ import annotations

import json
import re
import uuid

from tests.conftest import DATA
from tests.integration.conftest import assert_problem


def log_lines() -> list[dict]:
    lines = []
    for line in (DATA / "gunicorn.log").read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_one_json_access_line_per_request_and_event_lines(api):
    request_id = f"obs-{uuid.uuid4().hex}"
    alice = api.post("/api/users", {"username": "alice"}, headers={"X-Request-ID": request_id}).json()["id"]
    for n in range(5):
        api.new_post(alice, f"n{n}")
    assert_problem(api.post("/api/posts", {"user_id": alice, "content": "six"}), 429)
    lines = log_lines()
    access = [line for line in lines if line.get("request_id") == request_id and line["logger"] == "posterr.access"]
    assert len(access) == 1
    assert isinstance(access[0]["pid"], int)  # which worker answered
    assert access[0] | {"duration_ms": 0, "time": "", "client": "", "pid": 0} == {
        "time": "", "pid": 0, "level": "INFO", "logger": "posterr.access", "message": "request", "request_id": request_id,
        "method": "POST", "route": "/api/users", "path": "/api/users", "status": 201, "duration_ms": 0,
        "client": ""}
    events = {line.get("event") for line in lines if line.get("user_id") == alice}
    assert {"user_created", "post_created", "daily_limit_refused"} <= events
    assert any(line["logger"] == "gunicorn.error" for line in lines)  # gunicorn's own, in JSON too


def test_metrics_are_prometheus_text_across_workers(api):
    alice = api.new_user("alice")["id"]
    api.get("/api/posts")
    api.get("/api/posts")
    api.get(f"/api/users/{alice}")
    for n in range(6):
        api.post("/api/posts", {"user_id": alice, "content": f"n{n}"})
    response = api.get("/metrics")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert re.search(r'posterr_http_requests_total\{method="GET",route="/api/users/<user_id>",status="200"\} \d', text)
    assert 'posterr_http_request_duration_seconds_bucket{le="0.05",method="GET",route="/api/posts"}' in text
    assert re.search(r'posterr_cache_lookups_total\{result="hit"\} [1-9]', text)
    assert re.search(r'posterr_limit_refusals_total\{limit="daily_posts"\} [1-9]', text)
    assert re.search(r'posterr_db_pool_connections\{state="size"\} [1-9]', text)
