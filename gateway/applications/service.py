"""Applications and keys: registered by an organisation's admins and agents, or platform admins."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from gateway.applications import repository as applications_repository
from gateway.applications.events import ApiKeyIssued, ApiKeyRevoked
from gateway.applications.keys import KeyHasher, key_hint, new_api_key
from gateway.applications.models import ApiKey, Application
from gateway.applications.schemas import ApiKey as ApiKeyView
from gateway.applications.schemas import ApiKeyCreate, ApplicationCreate, KeyStatus
from gateway.ids import utcnow
from gateway.plans import repository as plans_repository
from libs.common.auth import Principal, Role, ensure_acts_for
from libs.common.errors import Conflict, Forbidden, InvalidInput, NotFound
from libs.common.events import new_event, outbox

# Who may manage an organisation's applications.
MANAGERS = frozenset({Role.DEPT_ADMIN, Role.ENTERPRISE_AGENT, Role.PLATFORM_ADMIN})


def _ensure_manager(principal: Principal) -> None:
    if principal.roles.isdisjoint(MANAGERS):
        raise Forbidden(
            "Applications are managed by department admins, enterprise agents and platform admins."
        )


async def create(
    *, session: AsyncSession, principal: Principal, draft: ApplicationCreate
) -> Application:
    """A new application of the caller's organisation (any organisation for platform admins)."""
    _ensure_manager(principal)
    org_id = draft.org_id or principal.org
    if org_id is None:
        raise InvalidInput.for_field("org_id", "You act for no organisation: name one.")
    ensure_acts_for(principal, org_id)
    if await applications_repository.find_by_name(session, org_id, draft.name) is not None:
        raise Conflict(f"The organisation has an application called {draft.name!r} already.")
    application = Application(
        org_id=org_id,
        name=draft.name,
        description=draft.description,
        client_id=draft.client_id,
        created_by=principal.sub,
    )
    applications_repository.add(session, application)
    await session.flush()
    return application


async def read(*, session: AsyncSession, principal: Principal, application_id: str) -> Application:
    """An application its organisation's managers (or platform admins) may see."""
    _ensure_manager(principal)
    application = await applications_repository.get(session, application_id)
    if application is None or not principal.acts_for(application.org_id):
        raise NotFound(f"No application {application_id}.")
    return application


async def search(
    *,
    session: AsyncSession,
    principal: Principal,
    org_id: str | None,
    after: str | None,
    limit: int,
) -> list[Application]:
    """The caller's organisation's applications; any organisation's for platform admins."""
    _ensure_manager(principal)
    if not principal.has_role(Role.PLATFORM_ADMIN):
        if principal.org is None:
            return []
        if org_id is not None:
            ensure_acts_for(principal, org_id)
        org_id = principal.org
    return await applications_repository.page(session, org_id=org_id, after=after, limit=limit)


async def issue_key(
    *,
    session: AsyncSession,
    principal: Principal,
    application_id: str,
    draft: ApiKeyCreate,
    hasher: KeyHasher,
    env: str,
) -> tuple[ApiKey, str]:
    """A new key on a published plan (any plan for platform admins); the key is returned once."""
    application = await read(session=session, principal=principal, application_id=application_id)
    plan = await plans_repository.get(session, draft.plan_id)
    if plan is None or (not plan.published and not principal.has_role(Role.PLATFORM_ADMIN)):
        raise InvalidInput.for_field("plan_id", "No such plan is open to new keys.")
    if draft.expires_at is not None and draft.expires_at <= utcnow():
        raise InvalidInput.for_field("expires_at", "The expiry must be in the future.")
    secret = new_api_key(env)
    key = ApiKey(
        application_id=application.id,
        plan_id=plan.id,
        label=draft.label,
        key_hash=hasher.digest(secret),
        hint=key_hint(secret),
        created_by=principal.sub,
        expires_at=draft.expires_at,
    )
    applications_repository.add(session, key)
    await session.flush()
    await outbox.add(
        session,
        new_event(
            ApiKeyIssued(
                key_id=key.id,
                application_id=application.id,
                org_id=application.org_id,
                plan_id=plan.id,
                expires_at=key.expires_at,
                issued_by=principal.sub,
            ),
            subject=application.id,
        ),
    )
    return key, secret


async def list_keys(
    *, session: AsyncSession, principal: Principal, application_id: str
) -> list[ApiKey]:
    """The application's keys, newest first."""
    await read(session=session, principal=principal, application_id=application_id)
    return await applications_repository.keys_of(session, application_id)


async def revoke_key(
    *, session: AsyncSession, principal: Principal, application_id: str, key_id: str
) -> ApiKey:
    """Revoke a key (again is fine); every replica refuses it once the event arrives."""
    application = await read(session=session, principal=principal, application_id=application_id)
    key = await applications_repository.get_key(session, application_id, key_id)
    if key is None:
        raise NotFound(f"No key {key_id} in this application.")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await outbox.add(
            session,
            new_event(
                ApiKeyRevoked(
                    key_id=key.id,
                    application_id=application.id,
                    org_id=application.org_id,
                    revoked_at=key.revoked_at,
                    revoked_by=principal.sub,
                ),
                subject=application.id,
            ),
        )
    return key


def key_status(key: ApiKey, now: datetime | None = None) -> KeyStatus:
    """Whether the key works now."""
    now = now or utcnow()
    if key.revoked_at is not None:
        return "revoked"
    expires = key.expires_at
    if expires is not None:
        if expires.tzinfo is None:  # SQLite hands back naive UTC
            expires = expires.replace(tzinfo=now.tzinfo)
        if expires <= now:
            return "expired"
    return "active"


def to_view(key: ApiKey) -> ApiKeyView:
    """The owner's view of a key."""
    return ApiKeyView(
        id=key.id,
        application_id=key.application_id,
        plan_id=key.plan_id,
        label=key.label,
        hint=key.hint,
        status=key_status(key),
        created_by=key.created_by,
        created_at=key.created_at,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
        last_used_at=key.last_used_at,
    )
