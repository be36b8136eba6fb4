"""Opaque, signed keyset cursors: `base64url(json).base64url(hmac)`.

The payload names the list it belongs to (`kind`), so a cursor issued for another list or sort
order is refused like a forged one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any

import orjson

from posterr.errors import ValidationFailed


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, secret: str):
        self._key = hashlib.sha256(secret.encode("utf-8")).digest()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:16]

    def encode(self, kind: str, values: list[Any]) -> str:
        payload = orjson.dumps([kind, values])
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, kind: str, cursor: str) -> list[Any]:
        """The values of a cursor this server issued for `kind`; anything else is a 422."""
        try:
            body, signature = cursor.split(".")
            payload = _unb64(body)
            if not hmac.compare_digest(_unb64(signature), self._sign(payload)):
                raise ValueError("bad signature")
            issued_kind, values = orjson.loads(payload)
        except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
            raise ValidationFailed.of("cursor", "is not a cursor this server issued") from None
        if issued_kind != kind:
            raise ValidationFailed.of("cursor", "was issued for another list or sort order")
        return values
