"""Pure input validation: each function returns the clean value or raises ValidationFailed."""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Any

from posterr.errors import ValidationFailed

USERNAME = re.compile(r"[A-Za-z0-9]{1,14}")
MAX_ID = 2**63 - 1
MAX_CONTENT = 777
MAX_KEYWORD = 256  # percent-encoded, even 4-byte characters stay within gunicorn's 8 KiB request line
DEFAULT_LIMIT, MAX_LIMIT = 10, 100
SORT_ORDERS = ("latest", "trending")


def username(value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationFailed.of("username", "is required and must be a string")
    if not USERNAME.fullmatch(value):
        raise ValidationFailed.of("username", "must be 1 to 14 letters (A-Z, a-z) or digits")
    return value


def is_id(value: Any) -> bool:
    """An id as JSON carries it: an integer from 1 to MAX_ID (PostgreSQL's bigint), not a string,
    float or boolean."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def body_id(field: str, value: Any, *, required: bool = True) -> int | None:
    """An id in a JSON body (is_id)."""
    if is_id(value) or (value is None and not required):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed.of(field, "is required and must be an integer" if value is None else "must be an integer")
    raise ValidationFailed.of(field, f"must be between 1 and {MAX_ID}")


def path_id(text: str) -> int | None:
    """An id in a path: digits only, 1 to MAX_ID; anything else names no resource (None)."""
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if is_id(value) else None


# Every control character (Unicode category Cc: C0, DEL and C1) but tab, line feed and carriage
# return: terminal escapes and the like, which no one types into a post.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def content(value: Any, field: str = "content") -> str:
    """Content as sent (never trimmed or normalised), refused when it would show as nothing: only
    white space or invisible format characters (Cf: zero-width spaces and joiners, U+2060, U+FEFF,
    direction marks); those stay inside visible text, where right-to-left languages need them."""
    if not isinstance(value, str):
        raise ValidationFailed.of(field, "must be a string")
    if CONTROL_CHARACTERS.search(value):
        raise ValidationFailed.of(field, "must not contain control characters other than tab, line feed and "
                                         "carriage return")
    if all(character.isspace() or unicodedata.category(character) == "Cf" for character in value):
        raise ValidationFailed.of(field, "must not be empty or only white space or invisible characters")
    if len(value) > MAX_CONTENT:
        raise ValidationFailed.of(field, f"must be at most {MAX_CONTENT} characters (got {len(value)})")
    return value


def creation(content_value: Any, repost_id: int | None, reply_to_id: int | None) -> tuple[str, str | None]:
    """What a creation is, from which of its fields are given, and its clean content: a post (neither
    id), a repost (repost_id, no content), a quote (repost_id and content) or a reply (reply_to_id)."""
    if reply_to_id is not None:
        if repost_id is not None:
            raise ValidationFailed.of("reply_to_id", "cannot be given with repost_id: a reply reposts nothing")
        if content_value is None:
            raise ValidationFailed.of("content", "is required for a reply")
        return "reply", content(content_value)
    if repost_id is None:
        if content_value is None:
            raise ValidationFailed.of("content", "is required for a post")
        return "post", content(content_value)
    if content_value is None or content_value == "":
        return "repost", None
    return "quote", content(content_value)


def query_id(field: str, text: str | None) -> int | None:
    """An id in the query string; empty means absent."""
    if not text:
        return None
    value = path_id(text)
    if value is None:
        raise ValidationFailed.of(field, f"must be an integer between 1 and {MAX_ID}")
    return value


def limit(text: str | None) -> int:
    if not text:
        return DEFAULT_LIMIT
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_LIMIT:
        raise ValidationFailed.of("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


def sort_order(text: str | None) -> str:
    if not text:
        return "latest"
    if text not in SORT_ORDERS:
        raise ValidationFailed.of("sort_by", f"must be one of: {', '.join(SORT_ORDERS)}")
    return text


def flag(field: str, text: str | None) -> bool:
    """A true/false query parameter; absent (or empty) is false."""
    if not text or text == "false":
        return False
    if text != "true":
        raise ValidationFailed.of(field, "must be true or false")
    return True


def day(field: str, text: str | None) -> date | None:
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed.of(field, "must be a date written YYYY-MM-DD") from None


def date_range(start: date | None, end: date | None) -> tuple[date | None, date | None]:
    if start and end and start > end:
        raise ValidationFailed.of("start_date", "must not be after end_date")
    return start, end


def keyword(text: str | None) -> str | None:
    if not text:
        return None
    if "\x00" in text:
        raise ValidationFailed.of("keyword", "must not contain the NUL character")
    if len(text) > MAX_KEYWORD:
        raise ValidationFailed.of("keyword", f"must be at most {MAX_KEYWORD} characters")
    return text


def has_trigram(keyword_text: str) -> bool:
    """Whether the keyword holds three consecutive letters or digits: what pg_trgm needs to serve
    ILIKE '%keyword%' from the trigram index. Without them (`zq`, `~~`, `a.b`, `ab-cd`) the contract
    (v2.1) searches the newest posts only.

    What pg_trgm does with such a pattern (PostgreSQL 15's, read in its source and checked with
    EXPLAIN ANALYZE): it splits it into runs of alphanumerics and takes the trigrams of each run,
    padded with blanks at a side where a non-alphanumeric character (a word boundary) stands rather
    than a wildcard. A run of three or more gives a trigram of three real characters, which narrows
    the index scan to the posts holding it. `zq` and `~~` give none: the index returns every post for
    a recheck (a whole-table scan by another name). `a.b` and `ab-cd` give only padded ones (`  b`;
    `ab `, ` cd`): `  b` stands for any word that starts with b, about as costly as none; `ab-cd`'s
    are narrow, but the contract bounds it all the same, which keeps one rule that a client can apply.

    Which characters are alphanumeric is the database's locale's word (iswalnum, C.UTF-8 here).
    Checked over every code point: the Unicode letters (categories L* and Nl, such as `é`, `日`, `Ⅻ`)
    and decimal digits (Nd) that this rule counts are all alphanumeric to it; it also counts 1,404
    combining marks and symbols of Unicode's Alphabetic property (Devanagari vowel signs, circled
    letters), which this rule does not, Python having no such property. A run broken there is
    searched among the newest posts only, never the reverse: no keyword this rule sends to the whole
    table lacks a trigram, so none scans all posts. Python's own isalnum() would err the other way
    (it counts `²` and `½`, which PostgreSQL does not)."""
    run = 0
    for character in keyword_text:
        run = run + 1 if character.isalpha() or character.isdecimal() or unicodedata.category(character) == "Nl" else 0
        if run == 3:
            return True
    return False


def like_pattern(keyword_text: str) -> str:
    """A case-insensitive substring pattern for ILIKE, with LIKE's wildcards taken literally."""
    escaped = keyword_text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


TOKEN_SCOPES = ("read", "write")
MAX_TOKEN_NAME = 100
TOKEN_LIFETIME = (60, 31_536_000)  # seconds: a minute to a year


def token_scopes(value: Any) -> list[str]:
    """A token's scopes: a non-empty list of distinct ones among read and write; absent: both."""
    if value is None:
        return list(TOKEN_SCOPES)
    if not isinstance(value, list) or not value or len(set(map(repr, value))) != len(value) \
            or not all(isinstance(scope, str) and scope in TOKEN_SCOPES for scope in value):
        raise ValidationFailed.of("scopes", "must be a non-empty list of distinct scopes among: read, write")
    return [scope for scope in TOKEN_SCOPES if scope in value]


def token_name(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_TOKEN_NAME or any(ord(c) < 32 or c == "\x7f" for c in value):
        raise ValidationFailed.of("name", f"must be a string of at most {MAX_TOKEN_NAME} characters, "
                                          "without control characters")
    return value


def token_lifetime(value: Any) -> int | None:
    """expires_in: whole seconds from a minute to a year; absent: the token does not expire."""
    if value is None:
        return None
    low, high = TOKEN_LIFETIME
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed.of("expires_in", f"must be a whole number of seconds from {low} to {high}")
    return value


def login_text(field: str, value: Any) -> str:
    """A login's username or password: a string (whether it names an account is the login's to say)."""
    if not isinstance(value, str):
        raise ValidationFailed.of(field, "is required and must be a string")
    return value
