"""The shape of an API key, checked offline: a forged key costs no database lookup.

A key is ``plt_`` + 43 characters of randomness (32 bytes, base64url) + an 11-character check
(the first 8 bytes of an HMAC-SHA-256 of the random part under the deployment's key-check
secret, base64url). Only the service can make a key whose check holds, so anything else is
refused before the database is asked, whoever sends it and however often.

The check is a filter, not the credential: the database still holds only a hash of each key,
and knowing the secret lets one make keys that are *looked up*, never keys that are *accepted*.

Keys made before checks existed (``plt_`` + 43 characters) are "legacy": they still work where
the database still holds one, and only they can make the service look up a key it has not
checked, so only they are counted against the per-address budget for failed keys.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re
import secrets

KEY_PREFIX = "plt_"
RANDOM_BYTES = 32  # 256 bits: beyond any guessing
RANDOM_LENGTH = 43  # base64url characters for RANDOM_BYTES, unpadded
CHECK_BYTES = 8
CHECK_LENGTH = 11

_CHECKED = re.compile(rf"{KEY_PREFIX}[A-Za-z0-9_-]{{{RANDOM_LENGTH + CHECK_LENGTH}}}")
_LEGACY = re.compile(rf"{KEY_PREFIX}[A-Za-z0-9_-]{{{RANDOM_LENGTH}}}")


class KeyShape(enum.Enum):
    CHECKED = "checked"  # well formed and its check holds: worth a lookup
    LEGACY = "legacy"  # made before checks existed: a lookup, under the failure budget
    REFUSED = "refused"  # malformed, or its check fails: refused offline


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class KeyChecker:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def _check(self, random_part: str) -> str:
        digest = hmac.new(self._secret, random_part.encode(), hashlib.sha256).digest()
        return _b64(digest[:CHECK_BYTES])

    def new_key(self) -> str:
        random_part = _b64(secrets.token_bytes(RANDOM_BYTES))
        return KEY_PREFIX + random_part + self._check(random_part)

    def shape(self, key: str) -> KeyShape:
        if _CHECKED.fullmatch(key):
            body = key[len(KEY_PREFIX) :]
            random_part, check = body[:RANDOM_LENGTH], body[RANDOM_LENGTH:]
            if hmac.compare_digest(check, self._check(random_part)):
                return KeyShape.CHECKED
            return KeyShape.REFUSED
        return KeyShape.LEGACY if is_legacy_shaped(key) else KeyShape.REFUSED


def is_legacy_shaped(key: str) -> bool:
    return _LEGACY.fullmatch(key) is not None


def new_secret() -> str:
    return secrets.token_urlsafe(32)
