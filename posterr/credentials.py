"""Bearer tokens as text (pure): making one, its digest and hint, and finding it in a request's
Authorization header, query string or body the way RFC 6750 allows (the header) and refuses (the rest)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from typing import Any

from posterr.errors import InvalidAuthRequest, InvalidToken

PREFIX = "pst_"
RANDOM_BYTES = 32
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# 32 bytes are 43 base62 digits (62**43 > 2**256), written with leading zeros to a fixed length.
DIGITS = 43
TOKEN = re.compile(rf"{PREFIX}[0-9A-Za-z]{{{DIGITS}}}")
# Where a client might put a token instead of the header: RFC 6750's access_token, and the obvious name.
TOKEN_FIELDS = ("access_token", "token")


def new_token() -> str:
    """pst_ and 32 random bytes in base62."""
    number = int.from_bytes(secrets.token_bytes(RANDOM_BYTES), "big")
    digits = []
    for _ in range(DIGITS):
        number, digit = divmod(number, 62)
        digits.append(BASE62[digit])
    return PREFIX + "".join(reversed(digits))


def digest(token: str) -> bytes:
    """What is stored of a token, and what it is looked up by: a 256-bit random value needs no slow
    hash, and the lookup by this digest compares no secret byte by byte."""
    return hashlib.sha256(token.encode("ascii")).digest()


def hint(token: str) -> str:
    """How its owner recognises a token in a list: pst_ and its last four characters."""
    return PREFIX + token[-4:]


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header (None: no header). WSGI servers join two
    headers of one name with a comma, which no token contains: two headers are refused like any
    scheme other than Bearer (400); a token that is not one this server could have issued is 401."""
    if authorization is None:
        return None
    if "," in authorization:
        raise InvalidAuthRequest("send one Authorization header, with one Bearer token")
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise InvalidAuthRequest("the Authorization header must use the Bearer scheme")
    token = value.strip()
    if not TOKEN.fullmatch(token):
        raise InvalidToken("the token is malformed")
    return token


def refuse_token_outside_header(fields: Iterable[tuple[str, Any]], where: str) -> None:
    """400 for a token sent in the query string or the body (they end up in logs, histories and
    proxies): a field RFC 6750 names for it, or any value that is a token."""
    for name, value in fields:
        if name in TOKEN_FIELDS or (isinstance(value, str) and TOKEN.fullmatch(value)):
            raise InvalidAuthRequest(f"a token must not be sent in the {where}: use the Authorization header")

