"""Tokens at rest: AES-256-GCM under a key derived from the platform's secret key.

A copy of the sessions table alone gives nobody a usable access or refresh token.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"pingtai portal session tokens v1"
_NONCE_BYTES = 12


class TokenSealer:
    """Seal and open the tokens a session holds; the session id is bound as associated data."""

    def __init__(self, secret_key: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            secret_key.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, token: str, *, session_id: str) -> bytes:
        """Nonce and ciphertext of ``token``."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, token.encode(), session_id.encode())

    def open(self, sealed: bytes, *, session_id: str) -> str:
        """The token sealed for ``session_id`` (InvalidTag if it was sealed for another)."""
        nonce, ciphertext = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
        return self._aead.decrypt(nonce, ciphertext, session_id.encode()).decode()
