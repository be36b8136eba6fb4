"""The per-client rate limit, on an app of its own with a small limit (20 per minute)."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import running_app
from tests.integration.conftest import assert_problem

LIMIT = 20


@pytest.fixture(scope="module")
def limited(servers):
    with running_app(servers, "gunicorn-rate-limited.log", POSTERR_RATE_LIMIT=f"{LIMIT}/minute",
                     POSTERR_TRUSTED_PROXIES="127.0.0.1") as base:
        yield base


def get(base: str, path: str, client: str, **kwargs) -> requests.Response:
    """As seen through a trusted proxy (127.0.0.1) forwarding for `client`."""
    return requests.get(base + path, headers={"X-Forwarded-For": client}, timeout=10, **kwargs)


def test_every_api_response_carries_the_headers(limited):
    response = get(limited, "/api/users", "203.0.113.1")
    assert response.headers["RateLimit-Policy"] == f'"default";q={LIMIT};w=60'
    remaining, reset = re.fullmatch(r'"default";r=(\d+);t=(\d+)', response.headers["RateLimit"]).groups()
    assert int(remaining) == LIMIT - 1 and 1 <= int(reset) <= 60
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
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["RateLimit"].startswith('"default";r=0;')
    assert get(limited, "/api/users", "203.0.113.3").status_code == 200  # another client is not limited


def test_operations_endpoints_are_not_limited(limited):
    client = "203.0.113.4"
    for _ in range(LIMIT + 2):
        assert get(limited, "/healthz", client).status_code == 200
    for path in ("/readyz", "/metrics", "/api/openapi.json"):
        response = get(limited, path, client)
        assert response.status_code == 200 and "RateLimit" not in response.headers


def test_forwarded_for_counts_only_from_trusted_proxies(limited, app_server):
    # The first untrusted hop from the right is the client: spoofed hops to its left do not matter.
    for n in range(LIMIT):
        get(limited, "/api/users", f"198.51.100.{n}, 203.0.113.5")
    assert get(limited, "/api/users", "10.9.9.9, 203.0.113.5").status_code == 429
    # The suite's main app trusts no proxy and limits nothing: the header changes nothing there.
    assert "RateLimit" not in requests.get(app_server + "/api/users", timeout=10).headers
