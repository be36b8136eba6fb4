"""What every response shares: the problem+json shape, X-Request-ID, CORS, health endpoints."""

from __future__ import annotations

import pytest

from tests.integration.conftest import assert_problem


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
    assert exposed == {"link", "retry-after", "ratelimit", "ratelimit-policy", "x-request-id", "location"}
    assert_problem(api.request("OPTIONS", "/api/nothing-here"), 404)


def test_healthz_and_readyz(api):
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"postgres": "ok", "redis": "ok"}


def test_nosniff_on_every_response(api):
    assert api.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"
    assert api.get("/nope").headers["X-Content-Type-Options"] == "nosniff"


def test_openapi_document_describes_every_route(api, app_server):
    document = api.get("/api/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    served = {("/api/users", "post"), ("/api/users", "get"), ("/api/users/{id}", "get"),
              ("/api/users/{id}/following/{target_id}", "put"), ("/api/users/{id}/following/{target_id}", "delete"),
              ("/api/users/{id}/followers", "get"), ("/api/users/{id}/following", "get"),
              ("/api/posts", "post"), ("/api/posts", "get"), ("/api/posts/search", "get"),
              ("/api/posts/{id}", "get"), ("/api/posts/{id}/repost", "post"), ("/healthz", "get"),
              ("/readyz", "get"), ("/api/openapi.json", "get")}
    documented = {(path, method) for path, item in document["paths"].items() for method in item
                  if method in ("get", "post", "put", "delete")}
    assert served <= documented
