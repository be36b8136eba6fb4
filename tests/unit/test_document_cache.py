"""The document cache (posterr/document_cache.py) without Redis: each lookup is counted under its
result and the key family of the name it looked up (the families themselves:
tests/unit/test_keys.py)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from posterr.document_cache import DOCUMENT_FAMILIES, DocumentCache
from posterr.keys import FEEDS_KEY, post_key, user_key

EPOCH = "0123456789ab"


class FakeRedis:
    """Just what DocumentCache.fetch uses: an epoch, and scripts that answer `found`."""

    def __init__(self, found: list):
        self.client = self
        self.found = found

    def script(self, _source: str):
        return lambda keys, args: self.found

    def epoch_of(self, _name: str) -> str:
        return EPOCH

    def run(self, operation):
        return operation(self.client)

    def read(self, script, keys, args):
        return script(keys=keys, args=args)


def lookups(family: str, result: str) -> float:
    return REGISTRY.get_sample_value("posterr_cache_lookups_total", {"family": family, "result": result}) or 0.0


@pytest.mark.parametrize("name, family", [(FEEDS_KEY, "feeds"), (post_key(3), "posts"), (user_key(4), "users")])
@pytest.mark.parametrize("found, result", [([1, b"cached"], "hit"), ([0, "token"], "miss")])
def test_each_lookup_is_counted_under_its_family_and_result(name, family, found, result):
    before = {(each, outcome): lookups(each, outcome) for each in DOCUMENT_FAMILIES.values()
              for outcome in ("hit", "miss")}
    DocumentCache(FakeRedis(found)).fetch(name, "json", 60, lambda: b"computed")
    changed = {key: lookups(*key) - value for key, value in before.items() if lookups(*key) != value}
    assert changed == {(family, result): 1.0}
