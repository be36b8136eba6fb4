"""The per-client rate limit, on apps of their own with a small limit: 20 per hour, so that one
request's allowance comes back only after 3 minutes and no outcome here depends on how fast the
test runs (with 20 per minute, a burst taking over 3 s would get one more request through)."""

from __future__ import annotations

import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from posterr.limits import ClientRateLimit
from posterr.redis_client import Redis
from tests.conftest import DATA, REDIS_CLUSTER, running_app
from tests.integration.conftest import Api, assert_problem, reads_processed, statement_calls
from tests.integration.workers import fresh_request

LIMIT = 20
PERIOD = 3600


@pytest.fixture(scope="module")
def limited(servers):
    """Trusts a proxy on 127.0.0.1: the test plays the proxy and names the client in X-Forwarded-For."""
    with running_app(servers, "gunicorn-rate-limited.log", POSTERR_RATE_LIMIT=f"{LIMIT}/hour",
                     POSTERR_TRUSTED_PROXIES="127.0.0.1") as base:
        yield base


@pytest.fixture(scope="module")
def untrusting(servers):
    """The same limit, and no proxy trusted (the default): every test request comes from 127.0.0.1."""
    with running_app(servers, "gunicorn-rate-untrusting.log", POSTERR_RATE_LIMIT=f"{LIMIT}/hour",
                     POSTERR_TRUSTED_PROXIES="") as base:
        yield base


def get(base: str, path: str, client: str | None, **kwargs) -> requests.Response:
    """A request of its own (fresh connection), as forwarded for `client` when one is named."""
    headers = {"X-Forwarded-For": client} if client else {}
    return requests.get(base + path, headers=headers, timeout=10, **kwargs)


def remaining(response: requests.Response) -> int:
    return int(re.fullmatch(r'"default";r=(\d+);t=(\d+)', response.headers["RateLimit"]).group(1))


def test_every_api_response_carries_the_headers(limited):
    response = get(limited, "/api/users", "203.0.113.1")
    assert response.headers["RateLimit-Policy"] == f'"default";q={LIMIT};w={PERIOD}'
    left, reset = re.fullmatch(r'"default";r=(\d+);t=(\d+)', response.headers["RateLimit"]).groups()
    assert int(left) == LIMIT - 1 and 1 <= int(reset) <= PERIOD
    assert "RateLimit" in get(limited, "/api/nothing-here", "203.0.113.1").headers


def test_a_burst_crosses_the_limit_with_429_and_retry_after(limited):
    client = "203.0.113.2"
    barrier = threading.Barrier(LIMIT + 5)

    def one(_):
        barrier.wait(timeout=10)
        return get(limited, "/api/users", client)

    with ThreadPoolExecutor(LIMIT + 5) as pool:
        responses = list(pool.map(one, range(LIMIT + 5)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * LIMIT + [429] * 5
    refused = next(r for r in responses if r.status_code == 429)
    assert_problem(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= PERIOD
    assert refused.headers["RateLimit"].startswith('"default";r=0;')
    assert get(limited, "/api/users", "203.0.113.3").status_code == 200  # another client is not limited


def test_operations_endpoints_are_not_limited(limited):
    client = "203.0.113.4"
    for _ in range(LIMIT + 2):
        assert get(limited, "/healthz", client).status_code == 200
    for path in ("/readyz", "/metrics", "/api/openapi.json"):
        response = get(limited, path, client)
        assert response.status_code == 200 and "RateLimit" not in response.headers
    assert remaining(get(limited, "/api/users", client)) == LIMIT - 1  # none of those was counted


def test_forwarded_for_counts_only_from_trusted_proxies(limited):
    # The first untrusted hop from the right is the client: spoofed hops to its left do not matter.
    for n in range(LIMIT):
        response = get(limited, "/api/users", f"198.51.100.{n}, 203.0.113.5")
        assert response.status_code == 200 and remaining(response) == LIMIT - 1 - n
    assert get(limited, "/api/users", "10.9.9.9, 203.0.113.5").status_code == 429
    assert get(limited, "/api/users", "203.0.113.6").status_code == 200  # the next hop is another client


def test_forwarded_for_is_ignored_when_no_proxy_is_trusted(untrusting):
    """Without a trusted proxy the client is the socket peer: requests from 127.0.0.1 claiming to
    forward for different clients all spend 127.0.0.1's one budget."""
    for n in range(LIMIT):
        client = None if n % 4 == 3 else f"198.51.100.{n}"
        response = get(untrusting, "/api/users", client)
        assert response.status_code == 200 and remaining(response) == LIMIT - 1 - n, (n, client)
    for client in ("203.0.113.7", None, "127.0.0.2"):
        assert_problem(get(untrusting, "/api/users", client), 429)


def redis_degraded_logged(log_start: int) -> bool:
    with open(DATA / "gunicorn-rate-limited.log", "rb") as log:
        log.seek(log_start)
        return b'"event": "redis_degraded"' in log.read()


@pytest.mark.faults
def test_the_limit_fails_open_while_redis_is_down_and_holds_again_after(limited, servers):
    if not servers.owned:
        pytest.skip("needs the suite's own Redis (DATABASE_URL/REDIS_URL point elsewhere)")
    client = "203.0.113.8"
    for n in range(LIMIT):
        assert get(limited, "/api/users", client).status_code == 200
    assert get(limited, "/api/users", client).status_code == 429  # spent, while Redis is up
    log_start = (DATA / "gunicorn-rate-limited.log").stat().st_size
    servers.stop_redis()
    try:
        # Fail open: without Redis the limit is not known, so every request is served (not 429,
        # not 5xx), over twice the limit, on fresh connections to either worker.
        statuses = [get(limited, "/api/users", client).status_code for _ in range(2 * LIMIT + 5)]
        assert statuses == [200] * len(statuses)
        assert redis_degraded_logged(log_start)
    finally:
        servers.start_redis()
    # Once each worker uses Redis again (it answers with the RateLimit headers), the limit holds.
    deadline, back = time.monotonic() + 30, set()
    while len(back) < 2:
        assert time.monotonic() < deadline, f"only workers {back} use Redis again"
        response, pid = fresh_request("GET", f"{limited}/api/users", headers={"X-Forwarded-For": "192.0.2.1"})
        if "RateLimit" in response.headers:
            back.add(pid)
    fresh = "203.0.113.9"
    for n in range(LIMIT):
        response = get(limited, "/api/users", fresh)
        assert response.status_code == 200 and remaining(response) == LIMIT - 1 - n
    assert_problem(get(limited, "/api/users", fresh), 429)


def test_a_limit_too_high_to_reach_allows_and_leaves_redis_in_use(servers):
    """At 10^9 a minute a request adds less to the client's TAT than a double holds near 2^40 ms: the
    key's expiry came out 0, SET refused it, and the breaker then took Redis from the cache too."""
    redis = Redis(servers.redis_url, timeout=1, retry_after=60, invalidation_deadline=1, reconnect_interval=0.5)
    limiter = ClientRateLimit(redis, 1_000_000_000, 60)
    decisions = [limiter.check("203.0.113.250") for _ in range(3)]
    assert [decision and decision.allowed for decision in decisions] == [True, True, True]
    assert redis.available


@pytest.mark.parametrize("path", ["/api/posts?start_date=2000-01-01", "/api/users/1", "/api/posts?author_id=1"])
def test_a_refused_request_runs_no_statement(limited, sql, path):
    """The check is deferred to the request's first call to a server (so that a cached read can carry
    it), yet settled before any PostgreSQL statement: a refused client costs one Redis round trip."""
    client = "203.0.113.11" + path.replace("/", "-")
    for _ in range(LIMIT):
        get(limited, "/api/users?limit=1", client)
    names = ("posts_page_latest", "user_by_id")
    before = [statement_calls(sql, name) for name in names]
    assert_problem(get(limited, path, client), 429)
    assert [statement_calls(sql, name) for name in names] == before


def test_a_following_page_from_its_timeline_carries_the_check_in_the_timeline_read(limited, redis_client):
    """The timeline read is the request's first call to a server: the rate check rides with it, one
    Redis round trip on a standalone server (two on a cluster), and then only PostgreSQL."""
    setup = {"X-Forwarded-For": "203.0.113.40"}
    reader, author = (requests.post(f"{limited}/api/users", json={"username": f"{name}{os.urandom(3).hex()}"},
                                    headers=setup, timeout=10).json()["id"] for name in ("reader", "author"))
    assert requests.put(f"{limited}/api/users/{reader}/following/{author}", headers=setup, timeout=10).ok
    assert requests.post(f"{limited}/api/posts", json={"user_id": author, "content": "hello"},
                         headers=setup, timeout=10).status_code == 201
    assert len(get(limited, f"/api/posts?followed_by={reader}", "203.0.113.41").json()) == 1  # builds it
    before = reads_processed(redis_client)
    response = get(limited, f"/api/posts?followed_by={reader}", "203.0.113.41")
    trips = reads_processed(redis_client) - before - (3 if REDIS_CLUSTER else 1)  # less our own INFO
    assert (response.status_code, len(response.json()), remaining(response)) == (200, 1, LIMIT - 2)
    assert trips == (2 if REDIS_CLUSTER else 1)


def test_a_token_counts_against_its_user_wherever_it_comes_from(servers):
    """Contract v2.0: an authenticated request counts against its token's user, an anonymous one
    against its address; so rotating addresses does not escape a user's limit, nor does a user's use
    spend the addresses' allowance."""
    with running_app(servers, "gunicorn-rate-tokens.log", POSTERR_AUTH="required", POSTERR_RATE_LIMIT=f"{LIMIT}/hour",
                     POSTERR_TRUSTED_PROXIES="127.0.0.1") as base:
        account = Api(base).new_account("limited")
        statuses = [requests.get(f"{base}/api/posts", timeout=10, headers={
            **account.auth, "X-Forwarded-For": f"198.51.100.{n}"}).status_code for n in range(LIMIT + 1)]
        assert statuses == [200] * LIMIT + [429]
        assert get(base, "/api/posts", "198.51.100.1").status_code == 200
        assert remaining(get(base, "/api/posts", "198.51.100.2")) == LIMIT - 1
