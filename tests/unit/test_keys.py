"""posterr/keys.py: every key name one of its builders makes belongs to exactly one key family, the
docs' key table lists exactly those families (how the document cache counts lookups by family:
tests/unit/test_document_cache.py), and a Redis Cluster master's generation key hashes to the slot
it is made for."""

from __future__ import annotations

import inspect
import re
from datetime import date
from fnmatch import fnmatchcase

import pytest
from redis.cluster import key_slot

from posterr import keys
from posterr.keys import GENERATION_KEY, KEY_FAMILIES, document_key, generation_key_in_slot, post_key
from tests.conftest import ROOT

EPOCH = "0123456789ab"
# The family of each builder's keys: a builder added to posterr/keys.py fails the test below until
# it is named here. A document's or a timeline's name is no key: the keys built from it (its name,
# then more: document_key, timeline_keys) are.
FAMILY_OF = {
    "FEEDS_KEY": "feeds", "post_key": "posts", "user_key": "users", "document_key": "posts",
    "timeline_name": "timelines", "timeline_keys": "timelines", "daily_quota_key": "quota",
    "rate_limit_key": "rate_limit", "login_failures_key": "login", "WRITE_POSITIONS_KEY": "wrote",
    "WRITE_POSITIONS_EXPIRY_KEY": "wrote", "POSITIONS_SETTLING_KEY": "positions", "GENERATION_KEY": "generation", "generation_key_in_slot": "generation",
}
NAMES = {"FEEDS_KEY", "post_key", "user_key", "timeline_name"}
NOT_KEYS = {"PREFIX": "what every key starts with", "feed_field": "a field of the feeds hash",
            "POSITIONS_HOLDER": "a field of the write positions hash"}
# A builder's arguments, by parameter name.
ARGUMENTS = {"user_id": 7, "post_id": 7, "day": date(2026, 11, 30), "client": "203.0.113.9", "slot": 5461,
             "epoch": EPOCH, "name": post_key(7), "kind": "user", "who": "alice"}


def builders() -> dict[str, object]:
    """Every key name and builder of posterr/keys.py: its public strings and functions."""
    return {name: value for name, value in vars(keys).items() if not name.startswith("_") and (
        isinstance(value, str) or callable(value) and not isinstance(value, type)
        and getattr(value, "__module__", None) == keys.__name__)}


def built(builder) -> list[str]:
    """What a builder makes, called with ARGUMENTS."""
    if isinstance(builder, str):
        return [builder]
    made = builder(**{name: ARGUMENTS[name] for name in inspect.signature(builder).parameters})
    return made if isinstance(made, list) else [made]


def families_of(key: str) -> list[str]:
    return [family.name for family in KEY_FAMILIES if fnmatchcase(key, family.pattern)]


def test_every_builder_has_its_family_named():
    assert set(builders()) == set(FAMILY_OF) | set(NOT_KEYS)


@pytest.mark.parametrize("name", sorted(set(builders()) - set(NOT_KEYS)))
def test_every_key_a_builder_makes_is_in_exactly_one_family(name):
    for made in built(builders()[name]):
        key = document_key(made, EPOCH) if name in NAMES else made
        assert key.startswith(f"{keys.PREFIX}:") and families_of(key) == [FAMILY_OF[name]], (name, key)


def key_table() -> list[tuple[list[str], str, str]]:
    """The rows of docs/architecture.md's Redis key table: each row's key names (each `<value>` in
    them made `x`), its family and the family's pattern."""
    section = (ROOT / "docs" / "architecture.md").read_text().partition("## Redis keys")[2].partition("\n## ")[0]
    rows = re.findall(r"^\| (.*?) \| `([^`]+)`: `([^`]+)` \|", section, re.MULTILINE)
    return [([re.sub(r"<[^>]+>", "x", name) for name in re.findall(r"`(posterr:[^`]+)`", names)],
             family, pattern)
            for names, family, pattern in rows]


def test_the_docs_key_table_lists_exactly_the_key_families():
    assert {(family, pattern) for _names, family, pattern in key_table()} == \
        {(family.name, family.pattern) for family in KEY_FAMILIES}


@pytest.mark.parametrize("names, family", [(names, family) for names, family, _pattern in key_table()],
                         ids=[names[0] if names else "no key name" for names, _family, _pattern in key_table()])
def test_each_key_in_the_docs_key_table_is_in_the_family_it_is_listed_under(names, family):
    assert names and all(families_of(name) == [family] for name in names), names


@pytest.mark.parametrize("slot", [0, 1, 5460, 5461, 10923, 16383])
def test_a_generation_key_hashes_to_its_slot(slot):
    key = generation_key_in_slot(slot)
    assert key.startswith(f"{GENERATION_KEY}:{{")
    assert key_slot(key.encode()) == slot
