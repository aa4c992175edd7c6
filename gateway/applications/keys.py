"""API key material: made with ``secrets``, stored only as an HMAC under a derived key."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# 32 random bytes (256 bits) in base64url: 43 characters after the prefix.
KEY_BYTES = 32
HINT_CHARS = 4
_HKDF_INFO = b"pingtai gateway api-key hmac v1"
_KEY_SHAPE = re.compile(r"pt_(live|test)_[A-Za-z0-9_-]{43}", re.ASCII)


def key_prefix(env: str) -> str:
    """``pt_live_`` in production, ``pt_test_`` elsewhere, so a test key never works live."""
    return "pt_live_" if env == "production" else "pt_test_"


def new_api_key(env: str) -> str:
    """A new key: the environment's prefix and 256 random bits."""
    return key_prefix(env) + secrets.token_urlsafe(KEY_BYTES)


def key_hint(key: str) -> str:
    """What an owner sees of a key after it is issued: its prefix and first characters."""
    return key[: len("pt_live_") + HINT_CHARS]


def looks_like_key(value: str) -> bool:
    """Whether ``value`` has the shape of a key (junk is refused before any hashing)."""
    return _KEY_SHAPE.fullmatch(value) is not None


class KeyHasher:
    """HMAC-SHA256 of keys under a key derived (HKDF) from the platform's secret key.

    A leaked table of hashes is useless without ``PINGTAI_SECRET_KEY``; a keyed hash (not a slow
    password hash) is right here because keys are long and random, and the check runs on every
    request.
    """

    def __init__(self, secret_key: str) -> None:
        self._key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            secret_key.encode()
        )

    def digest(self, key: str) -> str:
        """The stored form of ``key`` (64 hex characters)."""
        return hmac.new(self._key, key.encode(), hashlib.sha256).hexdigest()
