"""Key families (posterr/keys.py): every key the app builds belongs to exactly one, and the document
cache counts each lookup under the family of the name it looked up."""

from __future__ import annotations

from datetime import date
from fnmatch import fnmatchcase

import pytest
from prometheus_client import REGISTRY

from posterr.document_cache import DOCUMENT_FAMILIES, DocumentCache
from posterr.keys import (
    FEEDS_KEY,
    GENERATION_KEY,
    KEY_FAMILIES,
    POSITIONS_KEPT_KEY,
    POSITIONS_SETTLING_KEY,
    daily_quota_key,
    generation_key_in_slot,
    post_key,
    rate_limit_key,
    timeline_keys,
    user_key,
    write_position_key,
)

EPOCH = "0123456789ab"


def families_of(key: str) -> list[str]:
    return [family.name for family in KEY_FAMILIES if fnmatchcase(key, family.pattern)]


@pytest.mark.parametrize("key, family", [
    (f"{FEEDS_KEY}:{EPOCH}", "feeds"),
    (f"{post_key(7)}:{EPOCH}", "posts"),
    (f"{user_key(7)}:{EPOCH}", "users"),
    *[(key, "timelines") for key in timeline_keys(7, EPOCH)],
    (daily_quota_key(7, date(2026, 11, 30)), "quota"),
    (rate_limit_key("203.0.113.9"), "rate_limit"),
    (write_position_key("203.0.113.9"), "wrote"),
    (POSITIONS_KEPT_KEY, "positions"),
    (POSITIONS_SETTLING_KEY, "positions"),
    (GENERATION_KEY, "generation"),
    (generation_key_in_slot(5461), "generation"),
])
def test_every_key_the_app_builds_is_in_exactly_one_family(key, family):
    assert families_of(key) == [family]


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
