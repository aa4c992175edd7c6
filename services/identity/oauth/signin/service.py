"""Password sign-in with throttling and lockout, and the identity-provider session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import EventData, new_event, outbox
from services.identity import identifiers, passwords
from services.identity.ids import new_id, utcnow
from services.identity.oauth.derived_keys import new_opaque_token, token_digest
from services.identity.oauth.settings import OAuthSettings
from services.identity.oauth.signin import repository as signin_repository
from services.identity.oauth.signin.events import AccountLocked, SignInFailed, SignInSucceeded
from services.identity.oauth.signin.models import IdpSession, SignInFailure
from services.identity.people import repository as people_repository
from services.identity.people.models import User
from services.identity.protection import IdentifierProtector

PASSWORD_AMR = ["pwd"]


@dataclass(frozen=True, slots=True)
class Login:
    """What a sign-in name designates: a phone number, an e-mail or a resident id number."""

    kind: str  # phone | email | resident_id | other
    phone: str | None = None
    email: str | None = None
    resident_id_hash: str | None = None


def parse_login(value: str, *, protector: IdentifierProtector) -> Login:
    """Recognise the kind of a sign-in name; ``other`` matches no account."""
    value = value.strip()
    if not value.isprintable():
        return Login(kind="other")
    if "@" in value:
        return Login(kind="email", email=value.lower())
    if identifiers.is_valid_phone(value):
        return Login(kind="phone", phone=identifiers.normalise_phone(value))
    if identifiers.is_valid_resident_id(value):
        return Login(kind="resident_id", resident_id_hash=protector.lookup_hash(value))
    return Login(kind="other")


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _record(session: AsyncSession, data: EventData, subject: str) -> None:
    await outbox.add(session, new_event(data, subject=subject))


async def sign_in(
    *,
    session: AsyncSession,
    protector: IdentifierProtector,
    settings: OAuthSettings,
    login: str,
    password: str,
    ip: str,
    client_id: str,
) -> User | None:
    """The person these credentials prove, or None.

    Every refusal looks and costs the same (one argon2 verification): an unknown account, a
    wrong password, a locked account and a throttled address cannot be told apart.
    """
    now = utcnow()
    parsed = parse_login(login, protector=protector)
    window_start = now - timedelta(seconds=settings.oauth_ip_window_s)
    throttled = (
        await signin_repository.count_failures(session, ip=ip, since=window_start)
        >= settings.oauth_ip_max_failures
    )
    user = None
    if parsed.kind != "other":
        user = await people_repository.find_by_login(
            session,
            phone=parsed.phone,
            email=parsed.email,
            resident_id_hash=parsed.resident_id_hash,
        )
    # Verify even when the answer is already no, so every refusal takes as long.
    ok, new_hash = await passwords.verify_password(
        password, user.password_hash if user is not None else passwords.DUMMY_HASH
    )
    reason = None
    if throttled:
        reason = "ip_throttled"
    elif user is None:
        reason = "unknown_account"
    elif user.locked_until is not None and _aware(user.locked_until) > now:
        reason = "locked"
    elif not ok:
        reason = "wrong_password"
    elif user.status != "active":
        reason = "inactive"
    if reason is None and user is not None:
        await signin_repository.clear_account_failures(
            session, user_id=user.id, password_hash=new_hash
        )
        await _record(
            session,
            SignInSucceeded(
                user_id=user.id, client_id=client_id, ip=ip, acr=user.acr, amr=PASSWORD_AMR
            ),
            user.id,
        )
        return user
    signin_repository.add_failure(session, SignInFailure(id=new_id(), ip=ip, occurred_at=now))
    await _record(
        session,
        SignInFailed(
            user_id=user.id if user is not None else None,
            login_kind=parsed.kind,
            reason=reason or "wrong_password",
            client_id=client_id,
            ip=ip,
        ),
        user.id if user is not None else "unknown",
    )
    if user is not None and reason == "wrong_password":
        failures = await signin_repository.count_account_failure(session, user_id=user.id)
        if failures >= settings.oauth_account_max_failures:
            until = now + timedelta(seconds=settings.oauth_account_lock_s)
            await signin_repository.lock_account(session, user_id=user.id, until=until)
            await _record(
                session,
                AccountLocked(user_id=user.id, until=until, failures=failures, ip=ip),
                user.id,
            )
    await session.flush()
    return None


async def start_session(
    *, session: AsyncSession, settings: OAuthSettings, user: User, amr: list[str]
) -> tuple[IdpSession, str]:
    """A new identity-provider session for ``user``; returns it and the cookie's token."""
    token = new_opaque_token()
    now = utcnow()
    idp_session = IdpSession(
        id=new_id(),
        token_hash=token_digest(token),
        user_id=user.id,
        auth_time=now,
        acr=user.acr,
        amr=amr,
        expires_at=now + timedelta(seconds=settings.oauth_session_ttl_s),
        created_at=now,
    )
    signin_repository.add_session(session, idp_session)
    await session.flush()
    return idp_session, token


async def find_session(*, session: AsyncSession, token: str | None) -> IdpSession | None:
    """The live session a cookie's token names, if any."""
    if not token or len(token) > 128:
        return None
    found = await signin_repository.get_session(session, token_hash=token_digest(token))
    if found is None or found.revoked_at is not None or _aware(found.expires_at) <= utcnow():
        return None
    return found


def auth_time_of(idp_session: IdpSession) -> datetime:
    """When the session's person proved who they are."""
    return _aware(idp_session.auth_time)


async def prune(*, session: AsyncSession, settings: OAuthSettings) -> None:
    """Forget expired sessions and failures older than the throttling window."""
    now = utcnow()
    await signin_repository.prune_sessions(session, before=now)
    await signin_repository.prune_failures(
        session, before=now - timedelta(seconds=settings.oauth_ip_window_s)
    )
