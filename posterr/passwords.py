"""Passwords: the rule a new one must meet, and its Argon2id hash (argon2-cffi).

The cost is set so that one hash or check costs about 35 ms of CPU on the two-core machines Posterr is
measured on (docs/operations.md has the figures and how to measure them again): 19 MiB and three
passes, one lane, above OWASP's minimum for Argon2id (19 MiB, two passes). A hash made with another
cost is made again at the next successful login (`needs_rehash`)."""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from posterr.errors import ValidationFailed

MIN_LENGTH, MAX_LENGTH = 12, 1024
HASHER = PasswordHasher(time_cost=3, memory_cost=19 * 1024, parallelism=1, type=Type.ID)
# Checked against when the username is unknown, so that it costs what a wrong password does.
_DUMMY_HASH = HASHER.hash("posterr: no such account, but the same work")


def new_password(value: object, field: str = "password") -> str:
    """A password a user may choose: 12 to 1,024 characters (code points), anything but NUL; no
    composition rules (NIST SP 800-63B)."""
    if not isinstance(value, str):
        raise ValidationFailed.of(field, "is required and must be a string")
    if not MIN_LENGTH <= len(value) <= MAX_LENGTH:
        raise ValidationFailed.of(field, f"must be {MIN_LENGTH} to {MAX_LENGTH} characters")
    if "\x00" in value:
        raise ValidationFailed.of(field, "must not contain the NUL character")
    return value


def hashed(password: str) -> str:
    return HASHER.hash(_normalized(password))


def matches(password_hash: str | None, password: str) -> bool:
    """Whether `password` is the one hashed; with no hash (no such account, or one without a
    password) the same work is done against a dummy hash, and the answer is no."""
    try:
        return HASHER.verify(password_hash or _DUMMY_HASH, _normalized(password)) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


def _normalized(password: str) -> str:
    """NFKC, as NIST SP 800-63B advises: the same password typed on two keyboards matches."""
    return unicodedata.normalize("NFKC", password)
