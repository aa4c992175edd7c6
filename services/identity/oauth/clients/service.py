"""The client registry's rules: registration, secrets, authentication, bootstrap clients."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import new_event, outbox
from libs.common.pagination import encode_cursor
from services.identity.ids import utcnow
from services.identity.oauth.clients import repository as clients_repository
from services.identity.oauth.clients.cache import cache_for, changed_in, forget_on_commit
from services.identity.oauth.clients.events import (
    ClientCreated,
    ClientSecretRotated,
    ClientUpdated,
)
from services.identity.oauth.clients.exceptions import (
    ClientAuthenticationFailed,
    ClientExists,
    ClientNotFound,
    InvalidClientRegistration,
)
from services.identity.oauth.clients.models import OAuthClient
from services.identity.oauth.clients.schemas import ClientCreate, ClientUpdate, check_client_shape
from services.identity.oauth.derived_keys import derive_key
from services.identity.oauth.settings import (
    DEV_ADMIN_CLIENT_SECRET,
    DEV_PORTAL_CLIENT_SECRET,
    OAuthSettings,
)
from services.identity.roles import Role

log = structlog.get_logger("pingtai.identity.clients")

# What a person's sign-in can ask for; a client's own API scopes come on top.
USER_SCOPES = ["openid", "profile", "phone", "email", "pingtai"]
# Registered ids follow CLIENT_ID_PATTERN; bootstrap ids come from settings, so be lenient.
ANY_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def _plausible_client_id(client_id: str) -> bool:
    # Anything else is no client of ours, and must not reach the database (NUL bytes, ...).
    return bool(ANY_CLIENT_ID.match(client_id))


def new_client_secret() -> str:
    """A high-entropy client secret (256 bits)."""
    return "pts_" + secrets.token_urlsafe(32)


def hash_client_secret(secret: str, *, secret_key: str) -> str:
    """HMAC-SHA256 of a client secret under a key derived from the platform secret.

    Client secrets are random and long, so a keyed fast hash is safe here; argon2 is for the
    low-entropy passwords of people.
    """
    return hmac.new(
        derive_key(secret_key, "client-secrets"), secret.encode(), hashlib.sha256
    ).hexdigest()


def _secret_matches(client: OAuthClient, secret: str, *, secret_key: str) -> bool:
    if client.secret_hash is None:
        return False
    return hmac.compare_digest(
        client.secret_hash, hash_client_secret(secret, secret_key=secret_key)
    )


async def register_client(
    *,
    session: AsyncSession,
    secret_key: str,
    registration: ClientCreate,
    client_secret: str | None = None,
    by: str | None = None,
) -> tuple[OAuthClient, str | None]:
    """Register a client; returns it and its secret (None for a public client), shown once."""
    client_id = registration.client_id or f"client-{secrets.token_hex(8)}"
    if await clients_repository.get(session, client_id) is not None:
        raise ClientExists(f"A client {client_id!r} is already registered.")
    secret = None
    if registration.client_type == "confidential":
        secret = client_secret or new_client_secret()
    auth_method = registration.token_endpoint_auth_method or "client_secret_basic"
    client = OAuthClient(
        client_id=client_id,
        name=registration.name,
        client_type=registration.client_type,
        token_endpoint_auth_method=auth_method,
        secret_hash=hash_client_secret(secret, secret_key=secret_key) if secret else None,
        grant_types=list(dict.fromkeys(registration.grant_types)),
        scopes=list(dict.fromkeys(registration.scopes)),
        redirect_uris=list(dict.fromkeys(registration.redirect_uris)),
        post_logout_redirect_uris=list(dict.fromkeys(registration.post_logout_redirect_uris)),
        org_id=registration.org_id,
        roles=[str(r) for r in dict.fromkeys(registration.roles)],
        enabled=True,
    )
    await clients_repository.add(session, client)
    created = ClientCreated(
        client_id=client.client_id,
        client_type=client.client_type,
        grant_types=client.grant_types,
        org_id=client.org_id,
        roles=client.roles,
        by=by,
    )
    await outbox.add(session, new_event(created, subject=client.client_id))
    return client, secret


async def get_client(*, session: AsyncSession, client_id: str) -> OAuthClient:
    """The client ``client_id``, or ClientNotFound."""
    client = await clients_repository.get(session, client_id)
    if client is None:
        raise ClientNotFound(f"No client {client_id!r}.")
    return client


async def list_clients(
    *, session: AsyncSession, limit: int, after: str | None
) -> tuple[Sequence[OAuthClient], str | None]:
    """A page of clients by id, after the client id ``after``, and where the next page starts."""
    rows = await clients_repository.page(session, after=after, limit=limit + 1)
    items = rows[:limit]
    next_cursor = encode_cursor(items[-1].client_id) if len(rows) > limit else None
    return items, next_cursor


async def update_client(
    *, session: AsyncSession, client_id: str, changes: ClientUpdate, by: str | None = None
) -> OAuthClient:
    """Apply ``changes`` to a client (disabling one stops its grants at once)."""
    client = await get_client(session=session, client_id=client_id)
    values = changes.model_dump(exclude_unset=True)
    for name in ("grant_types", "scopes", "redirect_uris", "post_logout_redirect_uris", "roles"):
        if values.get(name) is not None:
            values[name] = [str(v) for v in dict.fromkeys(values[name])]
    try:
        check_client_shape(
            client_type=client.client_type,
            auth_method=client.token_endpoint_auth_method,
            grant_types=values.get("grant_types") or client.grant_types,
            redirect_uris=values.get("redirect_uris") or client.redirect_uris,
        )
    except ValueError as exc:
        raise InvalidClientRegistration(str(exc)) from exc
    for name, value in values.items():
        if value is None and name != "org_id":
            continue
        setattr(client, name, value)
    client.updated_at = utcnow()
    await session.flush()
    forget_on_commit(session, client.client_id)
    updated = ClientUpdated(
        client_id=client.client_id, changed=sorted(values), enabled=client.enabled, by=by
    )
    await outbox.add(session, new_event(updated, subject=client.client_id))
    return client


async def disable_client(
    *, session: AsyncSession, client_id: str, by: str | None = None
) -> OAuthClient:
    """Disable a client: it can no longer authenticate or start sign-ins."""
    return await update_client(
        session=session, client_id=client_id, changes=ClientUpdate(enabled=False), by=by
    )


async def rotate_client_secret(
    *, session: AsyncSession, secret_key: str, client_id: str, by: str | None = None
) -> tuple[OAuthClient, str]:
    """Give a confidential client a new secret; the old one stops working at once."""
    client = await get_client(session=session, client_id=client_id)
    if client.client_type != "confidential":
        raise InvalidClientRegistration("A public client has no secret.")
    secret = new_client_secret()
    client.secret_hash = hash_client_secret(secret, secret_key=secret_key)
    client.secret_rotated_at = client.updated_at = utcnow()
    await session.flush()
    forget_on_commit(session, client.client_id)
    await outbox.add(
        session,
        new_event(ClientSecretRotated(client_id=client.client_id, by=by), subject=client.client_id),
    )
    return client, secret


async def _registered_client(session: AsyncSession, client_id: str) -> OAuthClient | None:
    """The client from the in-memory cache, else from the database (then cached)."""
    cache = cache_for(session)
    cached = cache.get(client_id)
    if cached is not None:
        return cached
    loaded_at = time.monotonic()
    client = await clients_repository.get(session, client_id)
    if client is not None and not changed_in(session, client_id):
        cache.put(client, loaded_at=loaded_at)
    return client


async def authenticate_client(
    *,
    session: AsyncSession,
    secret_key: str,
    client_id: str,
    client_secret: str | None,
) -> OAuthClient:
    """The enabled client these credentials prove; ClientAuthenticationFailed otherwise.

    A confidential client must present its secret (basic or post); a public client none.
    """
    if not _plausible_client_id(client_id):
        raise ClientAuthenticationFailed(client_id)
    client = await _registered_client(session, client_id)
    if client is None or not client.enabled:
        raise ClientAuthenticationFailed(client_id)
    if client.client_type == "public":
        if client_secret is not None:
            raise ClientAuthenticationFailed(client_id)
        return client
    if client_secret is None or not _secret_matches(client, client_secret, secret_key=secret_key):
        raise ClientAuthenticationFailed(client_id)
    return client


async def find_enabled_client(*, session: AsyncSession, client_id: str) -> OAuthClient | None:
    """The client ``client_id`` if it is registered and enabled."""
    if not _plausible_client_id(client_id):
        return None
    client = await _registered_client(session, client_id)
    return client if client is not None and client.enabled else None


async def _ensure_client(
    *, session: AsyncSession, secret_key: str, registration: ClientCreate, secret: str
) -> None:
    assert registration.client_id is not None
    client = await clients_repository.get(session, registration.client_id)
    if client is None:
        await register_client(
            session=session,
            secret_key=secret_key,
            registration=registration,
            client_secret=secret,
            by="bootstrap",
        )
        log.info("bootstrap_client_created", client_id=registration.client_id)
        return
    # The settings are the source of truth for a bootstrap client's secret and shape.
    client.secret_hash = hash_client_secret(secret, secret_key=secret_key)
    client.grant_types = list(registration.grant_types)
    client.scopes = list(registration.scopes)
    client.redirect_uris = list(registration.redirect_uris)
    client.post_logout_redirect_uris = list(registration.post_logout_redirect_uris)
    client.roles = [str(r) for r in registration.roles]
    client.enabled = True
    await session.flush()
    forget_on_commit(session, client.client_id)


async def ensure_bootstrap_clients(
    *, session: AsyncSession, settings: OAuthSettings, secret_key: str, gateway_url: str, env: str
) -> list[str]:
    """Create or update the portal client and the first platform-admin client from settings."""
    ensured = []
    dev = env != "production"
    portal_secret = settings.oauth_portal_client_secret or (DEV_PORTAL_CLIENT_SECRET if dev else "")
    if portal_secret:
        redirect_uris = settings.oauth_portal_redirect_uris or [f"{gateway_url}/auth/callback"]
        signed_out_uris = settings.oauth_portal_post_logout_redirect_uris or [
            f"{gateway_url}/auth/signed-out"
        ]
        portal = ClientCreate(
            client_id=settings.oauth_portal_client_id,
            name="Pingtai portal 政务服务门户",
            client_type="confidential",
            # client_credentials: its own token, with which the gateway believes the address of
            # the anonymous visitor it calls for (docs/gateway.md, trusted forwarders).
            grant_types=["authorization_code", "refresh_token", "client_credentials"],
            scopes=USER_SCOPES,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=signed_out_uris,
        )
        await _ensure_client(
            session=session, secret_key=secret_key, registration=portal, secret=portal_secret
        )
        ensured.append(settings.oauth_portal_client_id)
    admin_secret = settings.oauth_admin_client_secret or (DEV_ADMIN_CLIENT_SECRET if dev else "")
    if admin_secret:
        admin = ClientCreate(
            client_id=settings.oauth_admin_client_id,
            name="Platform administration 平台管理",
            client_type="confidential",
            grant_types=["client_credentials"],
            scopes=[],
            roles=[Role.PLATFORM_ADMIN],
        )
        await _ensure_client(
            session=session, secret_key=secret_key, registration=admin, secret=admin_secret
        )
        ensured.append(settings.oauth_admin_client_id)
    return ensured
