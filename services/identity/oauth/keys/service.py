"""Signing keys: generation, encryption at rest, rotation, and the in-memory key ring."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from libs.common.events import new_event, outbox
from services.identity.ids import new_id, utcnow
from services.identity.oauth.keys import repository as keys_repository
from services.identity.oauth.keys.events import SigningKeysRotated
from services.identity.oauth.keys.models import SigningKey
from services.identity.oauth.settings import OAuthSettings
from services.identity.protection import IdentifierProtector

log = structlog.get_logger("pingtai.identity.keys")

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
SUPPORTED_ALGS = ("RS256", "ES256")


class NoSigningKey(RuntimeError):
    """No key of the algorithm is active yet (the database was never migrated or seeded)."""


def _purpose(kid: str) -> str:
    # Binds the ciphertext to its row: a private key copied to another kid does not decrypt.
    return f"oauth_signing_keys.{kid}"


def encrypt_private_key(pem: bytes, *, kid: str, protector: IdentifierProtector) -> str:
    """The private key sealed with AES-256-GCM under a key derived from the platform secret."""
    return protector.encrypt(pem.decode("ascii"), _purpose(kid))


def decrypt_private_key(stored: str, *, kid: str, protector: IdentifierProtector) -> PrivateKey:
    """The private key from its stored form."""
    pem = protector.decrypt(stored, _purpose(kid)).encode("ascii")
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey)
    return key


def _public_jwk(key: PrivateKey, *, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(alg)
    jwk: dict[str, Any] = json.loads(algorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, alg=alg, use="sig")
    return jwk


def new_signing_key(
    *, alg: str, protector: IdentifierProtector, activates_at: datetime | None = None
) -> SigningKey:
    """A fresh key pair of ``alg`` ready to store: RSA 2048 for RS256, P-256 for ES256."""
    if alg not in SUPPORTED_ALGS:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    private: PrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    kid = f"{alg.lower()}-{new_id()[:16]}"
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    now = utcnow()
    return SigningKey(
        kid=kid,
        alg=alg,
        public_jwk=json.dumps(_public_jwk(private, kid=kid, alg=alg)),
        private_key_encrypted=encrypt_private_key(pem, kid=kid, protector=protector),
        created_at=now,
        activates_at=activates_at or now,
        retired_at=None,
    )


def _algorithms_in_use(settings: OAuthSettings) -> list[str]:
    return sorted({settings.oauth_access_token_alg, settings.oauth_id_token_alg})


def key_retention(settings: OAuthSettings) -> timedelta:
    """How long a retired key stays published: the longest token lifetime plus a margin."""
    longest = max(settings.oauth_access_token_ttl_s, settings.oauth_id_token_ttl_s)
    return timedelta(seconds=longest + settings.oauth_key_retention_margin_s)


async def ensure_keys(
    *, session: AsyncSession, settings: OAuthSettings, protector: IdentifierProtector
) -> list[str]:
    """Create an active key for each algorithm in use that has none; returns the new kids."""
    have = await keys_repository.algorithms(session)
    created = []
    for alg in _algorithms_in_use(settings):
        if alg not in have:
            key = new_signing_key(alg=alg, protector=protector)
            await keys_repository.add(session, key)
            created.append(key.kid)
    return created


async def rotate_keys(
    *, session: AsyncSession, settings: OAuthSettings, protector: IdentifierProtector
) -> SigningKeysRotated:
    """Publish new keys, retire the current ones when they activate, drop long-retired ones."""
    now = utcnow()
    activates_at = now + timedelta(seconds=settings.oauth_key_activation_delay_s)
    dropped = await keys_repository.delete_retired_before(
        session, cutoff=now - key_retention(settings)
    )
    new_kids: list[str] = []
    retired: list[str] = []
    for alg in _algorithms_in_use(settings):
        retired += await keys_repository.retire_current(session, alg=alg, at=activates_at)
        key = new_signing_key(alg=alg, protector=protector, activates_at=activates_at)
        await keys_repository.add(session, key)
        new_kids.append(key.kid)
    rotated = SigningKeysRotated(
        new_kids=new_kids, retired_kids=retired, dropped_kids=dropped, activates_at=activates_at
    )
    await outbox.add(session, new_event(rotated, subject="signing-keys"))
    return rotated


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """A key in memory: its private half for signing, its JWK for publishing."""

    kid: str
    alg: str
    private_key: PrivateKey
    public_key: Any
    jwk: dict[str, Any]
    activates_at: datetime
    retired_at: datetime | None


class KeyRing:
    """The signing keys in memory, reloaded when the stored set changes (checked at most every
    ``oauth_key_check_interval_s``), so issuing a token does not read keys from the database."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        settings: OAuthSettings,
        protector: IdentifierProtector,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._settings = settings
        self._protector = protector
        self._keys: dict[str, LoadedKey] = {}
        self._markers: set[tuple[str, datetime | None]] | None = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Create the first keys if there are none, then load them."""
        async with self._sessionmaker() as session:
            created = await ensure_keys(
                session=session, settings=self._settings, protector=self._protector
            )
            await session.commit()
        if created:
            log.info("signing_keys_created", kids=created)
        await self.refresh(force=True)

    async def refresh(self, *, session: AsyncSession | None = None, force: bool = False) -> None:
        """Reload the keys if the check interval passed and the stored set changed.

        Pass the request's ``session``: opening a second connection while the request holds one
        (and, on SQLite, perhaps the write lock) could wait on a pool that requests exhausted.
        """
        interval = self._settings.oauth_key_check_interval_s
        if not force and time.monotonic() - self._checked_at < interval:
            return
        async with self._lock:
            if not force and time.monotonic() - self._checked_at < interval:
                return
            if session is not None:
                await self._reload(session)
            else:
                async with self._sessionmaker() as own:
                    await self._reload(own)
            self._checked_at = time.monotonic()

    async def _reload(self, session: AsyncSession) -> None:
        markers = await keys_repository.markers(session)
        if markers != self._markers:
            self._load(await keys_repository.list_keys(session))
            self._markers = markers

    def _load(self, stored: Any) -> None:
        keys: dict[str, LoadedKey] = {}
        for row in stored:
            known = self._keys.get(row.kid)
            private = (
                known.private_key
                if known
                else decrypt_private_key(
                    row.private_key_encrypted, kid=row.kid, protector=self._protector
                )
            )
            jwk = json.loads(row.public_jwk)
            keys[row.kid] = LoadedKey(
                kid=row.kid,
                alg=row.alg,
                private_key=private,
                public_key=private.public_key(),
                jwk=jwk,
                activates_at=_aware(row.activates_at),
                retired_at=_aware(row.retired_at) if row.retired_at else None,
            )
        added = keys.keys() - self._keys.keys()
        if added or self._keys.keys() - keys.keys():
            log.info("signing_keys_loaded", kids=sorted(keys))
        self._keys = keys

    async def signing_key(self, alg: str, *, session: AsyncSession | None = None) -> LoadedKey:
        """The key that signs with ``alg`` now: the newest one already active."""
        await self.refresh(session=session)
        now = utcnow()
        active = [k for k in self._keys.values() if k.alg == alg and k.activates_at <= now]
        if not active:
            await self.start()
            active = [k for k in self._keys.values() if k.alg == alg and k.activates_at <= now]
            if not active:
                raise NoSigningKey(alg)
        return max(active, key=lambda k: k.activates_at)

    async def verification_key(
        self, kid: str, *, session: AsyncSession | None = None
    ) -> LoadedKey | None:
        """The published key ``kid``, if any."""
        await self.refresh(session=session)
        return self._keys.get(kid)

    async def jwks(self, *, session: AsyncSession | None = None) -> dict[str, Any]:
        """The JSON Web Key Set: every published key, current, next and retiring."""
        await self.refresh(session=session)
        return {"keys": [k.jwk for k in sorted(self._keys.values(), key=lambda k: k.kid)]}


def _aware(moment: datetime) -> datetime:
    # SQLite gives naive datetimes back; they were stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
