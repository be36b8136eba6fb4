"""The served OpenAPI document against the running app, with schemathesis.

Every operation of `GET /api/openapi.json` gets generated requests, valid and invalid (the examples,
coverage and fuzzing phases), and each response must: not be a 500; carry a documented status code,
content type and headers; match the documented schema; and, when it is an error, be problem+json
with `error` equal to `detail`. Some generated ids are swapped for ids of rows that exist, so the
success paths are reached as well as the 404s.

Bounded and reproducible: a fixed seed, derandomized generation, no shrinking, no example database,
MAX_EXAMPLES per operation in the fuzzing phase. The whole run is one pytest test (one subtest per
operation), so `clean_state` empties the tables once and the seeded rows live through all of it.
"""

from __future__ import annotations

import json
from pathlib import Path

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "posterr" / "openapi.json"
SEED = 20261126
MAX_EXAMPLES = 25

CONFIG = {
    "seed": SEED,
    "generation": {
        "mode": "all",  # positive and negative
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        "no-shrink": True,
        "database": "none",
    },
    "phases": {"stateful": {"enabled": False}},
    "request-timeout": 15,
}


def problem_json_errors(ctx, response, case) -> None:
    """Every 4xx/5xx is application/problem+json with `error` == `detail` (the contract's error form)."""
    if response.status_code < 400:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.split(";")[0].strip().lower() == "application/problem+json", (
        f"a {response.status_code} must be application/problem+json, got {content_type!r}")
    body = response.json()
    assert isinstance(body, dict), f"a problem must be a JSON object, got {body!r}"
    assert body.get("status") == response.status_code, f"problem status {body.get('status')!r}"
    assert body.get("detail") and body.get("error") == body.get("detail"), (
        f"problem `error` must equal `detail`: {body!r}")
    assert "Traceback" not in response.content.decode("utf-8", "replace"), "a stack trace leaked"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    problem_json_errors,
]


@pytest.fixture
def seeded(app_server, clean_state) -> dict[str, list[int]]:
    """A few users, follows, and posts of every type, made through the API: ids the cases can hit."""
    session = requests.Session()

    def call(method: str, path: str, **kwargs) -> requests.Response:
        response = session.request(method, app_server + path, timeout=15, **kwargs)
        assert response.status_code in (201, 204), response.text
        return response

    users = [call("POST", "/api/users", json={"username": f"seed{n}"}).json()["id"] for n in range(6)]
    for follower in users[:4]:
        for target in users:
            if target != follower:
                call("PUT", f"/api/users/{follower}/following/{target}")

    def create(user: int, **body) -> int:
        return call("POST", "/api/posts", json={"user_id": user, **body}).json()["id"]

    first = create(users[0], content="hello posterr")
    second = create(users[1], content="Another post about posterr")
    repost = create(users[2], repost_id=first)
    quote = create(users[3], repost_id=first, content="quoting hello")
    quote_of_repost = create(users[4], repost_id=repost, content="a quote of a repost")
    repost_of_quote = create(users[1], repost_id=quote)
    # users[5] stays with a full quota for the day, so creations by them are 429.
    for n in range(5):
        create(users[5], content=f"post {n} of the day")
    posts = [first, second, repost, quote, quote_of_repost, repost_of_quote]
    unknown = 10**6  # well-formed ids that name nothing: the 404 paths
    return {"users": users + [unknown], "posts": posts + [unknown]}


# Loaded from the file at collection, so that pytest gets one test per operation;
# `test_served_document_is_the_file` ties it to what GET /api/openapi.json serves.
schema = schemathesis.openapi.from_path(OPENAPI_FILE, config=schemathesis.Config.from_dict(CONFIG))

USER_IDS_IN_QUERY = ("author_id", "followed_by", "viewer_id")


def aim_ids(case, data, seeded: dict[str, list[int]]) -> None:
    """Swap some generated ids (present in the case) for ids of existing rows, or for unknown ones."""
    path_kind = "posts" if case.operation.path.startswith("/api/posts/") else "users"
    targets = [(case.path_parameters, "id", path_kind), (case.path_parameters, "target_id", "users")]
    targets += [(case.query, name, "users") for name in USER_IDS_IN_QUERY]
    if isinstance(case.body, dict):
        targets += [(case.body, "user_id", "users"), (case.body, "repost_id", "posts")]
    for container, name, kind in targets:
        if container and name in container and data.draw(st.integers(0, 3), label=name) > 0:
            container[name] = data.draw(st.sampled_from(seeded[kind]), label=name)


@schema.parametrize()
@schema.given(data=st.data())
def test_app_conforms_to_openapi_document(case, data, seeded, app_server):
    aim_ids(case, data, seeded)
    case.call_and_validate(base_url=app_server, checks=CHECKS)


def test_served_document_is_the_file(app_server):
    response = requests.get(f"{app_server}/api/openapi.json", timeout=15)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == json.loads(OPENAPI_FILE.read_text())
