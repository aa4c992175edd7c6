"""The exchange's Ed25519 checkpoint key: loading, deriving in development, signing, verifying."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from libs.common.errors import PingtaiError

# What a checkpoint signature covers; the prefix keeps it from being any other message.
_CHECKPOINT_CONTEXT = "pingtai.exchange.ledger.checkpoint.v1"
_DEV_KEY_INFO = b"pingtai.exchange.ledger.signing-key.v1"


class LedgerKeyError(PingtaiError):
    """The checkpoint key is missing or unreadable; the exchange refuses to start."""

    status = 500
    code = "ledger-key-error"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    """The RFC 8037 JWK of a public key, with its RFC 7638 thumbprint as ``kid``."""
    x = _b64url(_raw_public(key))
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": x,
        "kid": key_id(key),
        "use": "sig",
        "alg": "EdDSA",
    }


def key_id(key: Ed25519PublicKey) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url) of a public key."""
    required = {"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw_public(key))}
    canonical = json.dumps(required, separators=(",", ":"), sort_keys=True).encode()
    return _b64url(hashlib.sha256(canonical).digest())


def checkpoint_message(*, position: int, entry_hash: str, signed_at_us: int, kid: str) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return json.dumps(
        [_CHECKPOINT_CONTEXT, position, entry_hash, signed_at_us, kid], separators=(",", ":")
    ).encode()


@dataclass(frozen=True, slots=True)
class CheckpointSigner:
    """Signs checkpoints with the exchange's private key."""

    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> Ed25519PublicKey:
        """The public half, which auditors verify with."""
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        """The key's thumbprint, stored in every checkpoint it signs."""
        return key_id(self.public_key)

    def sign(self, *, position: int, entry_hash: str, signed_at_us: int) -> str:
        """The base64url signature of a checkpoint of the head at ``position``."""
        message = checkpoint_message(
            position=position, entry_hash=entry_hash, signed_at_us=signed_at_us, kid=self.key_id
        )
        return _b64url(self.private_key.sign(message))


class VerificationKeys:
    """The public keys checkpoints may be signed with, by key id (current and former keys)."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {key_id(k): k for k in keys}

    @property
    def by_id(self) -> Mapping[str, Ed25519PublicKey]:
        """Every key, by key id."""
        return self._keys

    def verify(
        self, *, position: int, entry_hash: str, signed_at_us: int, kid: str, signature: str
    ) -> str | None:
        """None if the signature is good, else why not."""
        key = self._keys.get(kid)
        if key is None:
            return f"signed with key {kid!r}, which is not one of the trusted keys"
        try:
            raw = b64url_decode(signature)
            key.verify(
                raw,
                checkpoint_message(
                    position=position, entry_hash=entry_hash, signed_at_us=signed_at_us, kid=kid
                ),
            )
        except (InvalidSignature, ValueError):
            return "the signature does not verify"
        return None


def derive_development_key(secret: str) -> Ed25519PrivateKey:
    """A key derived from the platform secret, so development needs no key file."""
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_DEV_KEY_INFO).derive(
        secret.encode()
    )
    return Ed25519PrivateKey.from_private_bytes(seed)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM file (PKCS#8, unencrypted)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise LedgerKeyError(f"cannot read the ledger signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise LedgerKeyError(f"the ledger signing key {path} is not an Ed25519 key")
    return key


def load_public_keys(path: Path) -> list[Ed25519PublicKey]:
    """Every Ed25519 public key in a PEM file (one or more ``PUBLIC KEY`` blocks)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise LedgerKeyError(f"cannot read ledger public keys from {path}: {exc}") from exc
    marker = "-----END PUBLIC KEY-----"
    keys: list[Ed25519PublicKey] = []
    for block in text.split(marker):
        if "-----BEGIN PUBLIC KEY-----" not in block:
            continue
        try:
            key = serialization.load_pem_public_key((block.strip() + "\n" + marker).encode())
        except ValueError as exc:
            raise LedgerKeyError(f"unreadable public key in {path}: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise LedgerKeyError(f"a public key in {path} is not an Ed25519 key")
        keys.append(key)
    return keys


def public_pem(key: Ed25519PublicKey) -> str:
    """The SubjectPublicKeyInfo PEM of a public key."""
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
