"""A Redis that refuses connections while it keeps every key (a proxy, a Kubernetes Service with no
ready endpoint, a firewall) is no new Redis: a write it refused is seen by every worker once it
answers again (posterr/cache.py, mechanism 3)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from loadtests.refusing_proxy import RefusingProxy
from tests.conftest import REDIS_CLUSTER, _free_port, running_app
from tests.integration.conftest import Api, on_every_worker

pytestmark = pytest.mark.skipif(REDIS_CLUSTER, reason="the generation is a standalone server's (cache.py)")
LOG = "gunicorn-refusals.log"


@pytest.fixture
def proxied(servers):
    """The app, reaching Redis through a proxy that the test makes refuse."""
    url = urlsplit(servers.redis_url)
    proxy = RefusingProxy(_free_port(), (url.hostname, url.port))
    proxy.resume()
    try:
        with running_app(servers, LOG, REDIS_URL=url._replace(netloc=f"127.0.0.1:{proxy.port}").geturl(),
                         POSTERR_REDIS_RETRY_AFTER="0.05") as base:
            yield Api(base), proxy
    finally:
        proxy.stop()


def test_a_write_that_redis_refused_is_read_by_every_worker_once_it_answers(proxied):
    api, proxy = proxied
    author = api.new_user("refused")["id"]
    for feed in ("/api/posts", f"/api/users/{author}"):  # cached by every worker
        on_every_worker(api.base, "cache", lambda get, path=feed: get(path).raise_for_status(), LOG)
    proxy.refuse()
    post = api.new_post(author, "while Redis refused")
    proxy.resume()

    def current(get):
        assert get(f"/api/users/{author}").json()["posts_count"] == 1
        assert [p["id"] for p in get("/api/posts").json()][:1] == [post["id"]]

    on_every_worker(api.base, "after", current, LOG)
