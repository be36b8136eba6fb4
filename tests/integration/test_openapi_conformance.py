"""The OpenAPI document against the running app, with schemathesis.

Every operation of `posterr/openapi.json` (what GET /api/openapi.json serves, checked below) gets
generated requests, valid and invalid (schemathesis' examples, coverage and fuzzing phases), and every
response must: not be a 5xx; have a documented status code, content type and headers; match the
documented schema; and, when it is an error, be problem+json with `error` equal to `detail`, as the
API says (docs/api.md). Some generated ids and cursors are swapped for ones that exist, so that the success
paths and second pages are reached as well as the 404s and 422s. The app runs in required mode (what
the document describes): most cases carry the bearer token of the user they name, some none or a
generated one, so that the 401s and 403s are reached too.

One pytest test per operation. Bounded and reproducible: a fixed seed, derandomized generation, no
shrinking, no example database, MAX_EXAMPLES per operation in the fuzzing phase (the coverage phase
adds its own fixed set of boundary cases). `clean_state` empties the tables before each operation and
`seeded` makes fresh rows; what an operation's cases create stays for its later cases.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.conftest import PASSWORD

OPENAPI_FILE = Path(__file__).resolve().parents[2] / "posterr" / "openapi.json"
SEED = 20261126
MAX_EXAMPLES = 25

CONFIG = {
    "seed": SEED,
    "generation": {
        "mode": "all",  # positive and negative cases
        "max-examples": MAX_EXAMPLES,
        "deterministic": True,
        "no-shrink": True,
        "database": "none",
    },
    "phases": {"stateful": {"enabled": False}},
    "request-timeout": 15,
    # Failure reports show the request as sent: nothing here is secret, and the default masks any
    # header or parameter whose name holds "key" (Idempotency-Key, keyword).
    "output": {"sanitization": {"enabled": False}},
}


def problem_json_errors(ctx, response, case) -> None:
    """The API's error form and headers: every 4xx/5xx is application/problem+json with `status`,
    `error` == `detail` and no stack trace; every response has X-Request-ID; a 405 has Allow."""
    assert response.headers.get("x-request-id"), "every response carries X-Request-ID"
    if response.status_code < 400:
        return
    content_type = (response.headers.get("content-type") or [""])[0]
    assert content_type.split(";")[0].strip().lower() == "application/problem+json", (
        f"a {response.status_code} must be application/problem+json, got {content_type!r}")
    body = response.json()
    assert isinstance(body, dict), f"a problem must be a JSON object, got {body!r}"
    assert {"type", "title", "status", "detail", "error"} <= body.keys(), f"problem members missing: {body!r}"
    assert body["status"] == response.status_code, f"problem status {body['status']!r}"
    assert body["detail"] and body["error"] == body["detail"], f"problem `error` must equal `detail`: {body!r}"
    assert "Traceback" not in response.content.decode("utf-8", "replace"), "a stack trace leaked"
    if response.status_code == 405:
        assert response.headers.get("allow"), "a 405 carries Allow"


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    problem_json_errors,
]

# Ids and cursors that exist while an operation's cases run (filled by `seeded`, read by the hook).
SEEDED: dict[str, list] = {}


@pytest.fixture
def seeded(required_app, clean_state):
    """Accounts with tokens, follows, and posts of every type made through the API, and a few real
    cursors."""
    session = requests.Session()

    def call(method: str, path: str, expect: int, **kwargs) -> requests.Response:
        response = session.request(method, required_app + path, timeout=15, **kwargs)
        assert response.status_code == expect, response.text
        return response

    tokens = {}
    for n in range(6):
        user = call("POST", "/api/users", 201, json={"username": f"seed{n}", "password": PASSWORD}).json()["id"]
        tokens[user] = call("POST", "/api/tokens", 201, json={"username": f"seed{n}", "password": PASSWORD}).json()["token"]
    users = list(tokens)

    def bearer(user: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[user]}"}

    for follower in users[:4]:
        for target in users:
            if target != follower:
                call("PUT", f"/api/users/{follower}/following/{target}", 204, headers=bearer(follower))

    def create(user: int, **body) -> int:
        return call("POST", "/api/posts", 201, json=body, headers=bearer(user)).json()["id"]

    first = create(users[0], content="hello posterr")
    second = create(users[1], content="Another post about posterr")
    repost = create(users[2], repost_id=first)
    quote = create(users[3], repost_id=first, content="quoting hello")
    quote_of_repost = create(users[4], repost_id=repost, content="a quote of a repost")
    repost_of_quote = create(users[1], repost_id=quote)
    answer = create(users[2], content="a reply to hello", reply_to_id=first)
    second_answer = create(users[3], content="and another reply", reply_to_id=first)
    reply_to_reply = create(users[4], content="a reply to a reply", reply_to_id=answer)
    for n in range(5):  # users[5] has used the day's quota: their creations are 429
        create(users[5], content=f"post {n} of the day")

    cursors = []
    for path in ("/api/users?limit=2", "/api/posts?limit=2", "/api/posts?limit=2&sort_by=trending",
                 "/api/posts/search?keyword=posterr&limit=1", f"/api/users/{users[0]}/following?limit=2",
                 "/api/posts?include_replies=true&limit=2", f"/api/posts/{first}/replies?limit=1",
                 f"/api/users/{users[5]}/followers?limit=2"):
        link = call("GET", path, 200).links["next"]["url"]
        cursors += parse_qs(urlsplit(link).query)["cursor"]

    unknown = 10**6  # a well-formed id that names nothing: the 404 paths
    SEEDED.update(users=[*users, unknown], tokens=tokens,
                  posts=[first, second, repost, quote, quote_of_repost, repost_of_quote, answer, second_answer,
                         reply_to_reply, unknown],
                  cursors=cursors)
    yield SEEDED
    SEEDED.clear()


# Loaded from the file at collection (so pytest gets one test per operation) and sent to `app_server`
# at run time; test_served_document_is_the_file ties the file to what the app serves. (The lazy loader,
# schemathesis.pytest.from_fixture, fails under pytest 9.2 in schemathesis 4.32.5: it sets the removed
# `Function._nodeid`.)
schema = schemathesis.openapi.from_path(OPENAPI_FILE, config=schemathesis.Config.from_dict(CONFIG))

USER_IDS_IN_QUERY = ("author_id", "followed_by", "viewer_id")


def _slots(case) -> list[tuple[str, str, str]]:
    """(part of the request, name, pool) of each id or cursor the generated case carries."""
    path_pool = "posts" if case.operation.path.startswith("/api/posts/") else "users"
    slots = [("path_parameters", name, pool) for name, pool in (("id", path_pool), ("target_id", "users"))
             if name in (case.path_parameters or {})]
    query = case.query or {}
    slots += [("query", name, "users") for name in USER_IDS_IN_QUERY if name in query]
    slots += [("query", "cursor", "cursors")] if "cursor" in query else []
    if isinstance(case.body, dict):
        slots += [("body", name, pool) for name, pool in (("user_id", "users"), ("repost_id", "posts"),
                                                          ("reply_to_id", "posts")) if name in case.body]
    return slots


@schema.hook
def flatmap_case(context, case):
    """Keep a generated id or cursor one time in four; otherwise use one that exists (or the unknown id).
    Then, three times in four, the token of the user the case names (the body's user_id, the path's
    follower), else of any seeded user; otherwise whatever Authorization was generated, if any."""
    if not SEEDED:
        return st.just(case)
    slots = _slots(case)
    picks = [st.one_of(st.none(), *[st.sampled_from(SEEDED[pool])] * 3) for _, _, pool in slots]
    holders = st.one_of(st.none(), *[st.sampled_from(sorted(SEEDED["tokens"]))] * 3)

    def aim(chosen: tuple):
        *values, holder = chosen
        for (part, name, _), value in zip(slots, values, strict=True):
            if value is not None:
                setattr(case, part, {**getattr(case, part), name: value})
        if holder is not None:
            named = case.body.get("user_id") if isinstance(case.body, dict) else None
            if "following" in case.operation.path:
                named = (case.path_parameters or {}).get("id")
            token = SEEDED["tokens"].get(named if named in SEEDED["tokens"] else holder)
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        return case

    return st.tuples(*picks, holders).map(aim)


@schema.parametrize()
# The fixtures hold for all of an operation's cases on purpose: they share the seeded rows.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_app_conforms_to_openapi_document(case, seeded, required_app):
    case.call_and_validate(base_url=required_app, checks=CHECKS)


def test_served_document_is_the_file(required_app):
    response = requests.get(f"{required_app}/api/openapi.json", timeout=15)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
