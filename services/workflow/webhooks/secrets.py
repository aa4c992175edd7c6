"""Webhook signing secrets: made at random, shown once, stored encrypted (AES-GCM)."""

from __future__ import annotations

import base64
import os
import secrets as stdlib_secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_PREFIX = "whsec_"
_INFO = b"pingtai workflow webhook secrets v1"


def new_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(stdlib_secrets.token_bytes(32)).decode()


def _key(part_secret: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        part_secret.encode()
    )


def seal(secret: str, *, part_secret: str) -> str:
    """``secret`` encrypted under a key derived from the part's secret key."""
    nonce = os.urandom(12)
    sealed = AESGCM(_key(part_secret)).encrypt(nonce, secret.encode(), _INFO)
    return base64.urlsafe_b64encode(nonce + sealed).decode()


def unseal(sealed: str, *, part_secret: str) -> str:
    """The secret ``seal`` encrypted (raises if the part's secret key changed)."""
    raw = base64.urlsafe_b64decode(sealed.encode())
    return AESGCM(_key(part_secret)).decrypt(raw[:12], raw[12:], _INFO).decode()
