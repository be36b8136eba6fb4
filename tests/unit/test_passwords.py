"""posterr/passwords.py: the rule a new password meets (a table), and its Argon2id hash."""

from __future__ import annotations

import unicodedata

import pytest
from argon2 import PasswordHasher

from posterr import passwords
from posterr.errors import ValidationFailed


@pytest.mark.parametrize("value", ["a" * 12, "a" * 1024, "twelve chars", "🔑" * 12, " " * 12, "Ça fait café!"])
def test_good_passwords(value):
    assert passwords.new_password(value) == value


@pytest.mark.parametrize("value", [None, "a" * 11, "a" * 1025, "\x00" * 12, "twelve chars\x00", 123456789012, b"a" * 12])
def test_bad_passwords(value):
    with pytest.raises(ValidationFailed) as caught:
        passwords.new_password(value)
    assert caught.value.errors[0]["field"] == "password"
    assert not isinstance(value, str) or value not in caught.value.detail


def test_a_hash_is_argon2id_and_matches_only_its_password_in_any_unicode_form():
    password = "Ça fait café!"
    stored = passwords.hashed(password)
    assert stored.startswith("$argon2id$") and password not in stored
    assert passwords.matches(stored, unicodedata.normalize("NFD", password))
    assert not passwords.matches(stored, password + " ")
    assert not passwords.needs_rehash(stored)


def test_no_hash_never_matches():
    assert not passwords.matches(None, "posterr: no such account, but the same work")
    assert not passwords.matches("not a hash", "anything at all")


def test_no_account_costs_one_argon2_check_as_a_wrong_password_does(monkeypatch):
    """An unknown username must take about as long as a wrong password: the same check, on a dummy
    hash made with the same cost."""
    checked = []

    class Counting(PasswordHasher):
        def verify(self, stored, given):
            checked.append(stored)
            return super().verify(stored, given)

    hasher = passwords.HASHER
    monkeypatch.setattr(passwords, "HASHER", Counting(time_cost=hasher.time_cost, memory_cost=hasher.memory_cost,
                                                      parallelism=hasher.parallelism, type=hasher.type))
    stored = passwords.hashed("the right password")
    passwords.matches(stored, "a wrong password")
    passwords.matches(None, "a wrong password")
    assert len(checked) == 2 and checked[1] != stored
    assert checked[1].split("$")[:4] == stored.split("$")[:4]  # argon2id, same version and cost
