"""Protecting identifiers at rest: a keyed hash to find them, authenticated encryption to keep them.

Identity numbers and credit codes are personal or sensitive data, so the database holds them in
two protected forms, both keyed by ``PINGTAI_SECRET_KEY`` through HKDF-SHA256 with a separate
``info`` per use (a key never serves two purposes):

- ``lookup_hash``: HMAC-SHA256, deterministic, so a column of hashes can carry a unique index and
  answer "who has this number?" without holding the number;
- ``encrypt``/``decrypt``: AES-256-GCM with a random 96-bit nonce, as the token
  ``v1.<nonce>.<ciphertext and tag>`` (base64url, no padding). The caller's ``purpose`` (e.g.
  ``"users.resident_id"``) is authenticated with it, so a token copied into another column or
  table does not decrypt there.

Changing the secret key makes both unreadable: rotating it means re-encrypting and re-hashing.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import unicodedata

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_VERSION = "v1"
_LOOKUP_INFO = b"pingtai identity lookup v1"
_ENCRYPTION_INFO = b"pingtai identity encryption v1"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class ProtectionError(ValueError):
    """A token that is malformed, was altered, or belongs to another purpose or key."""


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not _BASE64URL.fullmatch(text):
        raise ProtectionError("the token is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ProtectionError("the token is not base64url") from None


def _associated_data(purpose: str) -> bytes:
    if not purpose:
        raise ValueError("a purpose is required: it binds a token to where it is stored")
    # The version is bound too, so a later format cannot be passed off as this one.
    return f"pingtai {TOKEN_VERSION} {purpose}".encode()


def normalise_for_lookup(value: str) -> str:
    """The form a value is hashed in: NFKC, no surrounding blanks, upper case."""
    return unicodedata.normalize("NFKC", value).strip().upper()


class IdentifierProtector:
    """Hashes and encrypts identifiers with keys derived from the platform's secret key."""

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("the secret key must not be empty")
        secret = secret_key.encode()
        self._lookup_key = _derive(secret, _LOOKUP_INFO)
        self._aead = AESGCM(_derive(secret, _ENCRYPTION_INFO))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<keys hidden>)"

    def lookup_hash(self, value: str) -> str:
        """The keyed hash (HMAC-SHA256, hex) that finds a value without storing it."""
        mac = crypto_hmac.HMAC(self._lookup_key, hashes.SHA256())
        mac.update(normalise_for_lookup(value).encode())
        return mac.finalize().hex()

    def matches(self, value: str, lookup_hash: str) -> bool:
        """Whether ``value`` has this lookup hash, compared in constant time."""
        return hmac.compare_digest(self.lookup_hash(value), lookup_hash)

    def encrypt(self, value: str, purpose: str) -> str:
        """A fresh ``v1.<nonce>.<ciphertext>`` token of ``value``, bound to ``purpose``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode(), _associated_data(purpose))
        return f"{TOKEN_VERSION}.{_b64encode(nonce)}.{_b64encode(sealed)}"

    def decrypt(self, token: str, purpose: str) -> str:
        """The value sealed in ``token`` for ``purpose``; ProtectionError if it was altered."""
        associated_data = _associated_data(purpose)
        parts = token.split(".")
        if len(parts) != 3:
            raise ProtectionError("a token has three dot-separated parts")
        version, nonce_text, sealed_text = parts
        if version != TOKEN_VERSION:
            raise ProtectionError(f"unknown token version {version[:8]!r}")
        nonce, sealed = _b64decode(nonce_text), _b64decode(sealed_text)
        if len(nonce) != _NONCE_BYTES or len(sealed) < _TAG_BYTES:
            raise ProtectionError("the token is truncated")
        try:
            plaintext = self._aead.decrypt(nonce, sealed, associated_data)
        except InvalidTag:
            raise ProtectionError(
                "the token was altered, or sealed for another purpose or key"
            ) from None
        return plaintext.decode()
