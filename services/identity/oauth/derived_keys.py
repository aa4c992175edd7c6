"""Keys for one purpose each, derived from the platform's secret key with HKDF-SHA256."""

from __future__ import annotations

import base64
import hashlib
import secrets
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


@lru_cache(maxsize=32)
def derive_key(secret_key: str, purpose: str, length: int = 32) -> bytes:
    """A key for ``purpose`` (e.g. ``"client-secrets"``), never the secret key itself."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=b"pingtai-identity-oauth",
        info=purpose.encode(),
    ).derive(secret_key.encode())


def new_opaque_token(nbytes: int = 32) -> str:
    """A high-entropy opaque token (authorization codes, refresh tokens, session ids)."""
    return secrets.token_urlsafe(nbytes)


def token_digest(token: str) -> str:
    """The SHA-256 of an opaque token, as stored: the token itself is never kept."""
    return hashlib.sha256(token.encode()).hexdigest()


def b64url(data: bytes) -> str:
    """Base64url without padding (JOSE, PKCE)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
