"""The rules about people: registration, who may see whom, assurance levels."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.errors import Forbidden, InvalidInput
from libs.common.events import new_event, outbox
from libs.common.subjects import SubjectRefs
from services.identity import identifiers, passwords
from services.identity.ids import utcnow
from services.identity.notifications import CodeSender
from services.identity.organisations import repository as organisations_repository
from services.identity.organisations.models import Membership
from services.identity.people import repository as people_repository
from services.identity.people.events import (
    AssuranceRaised,
    EmailChangeConflict,
    EmailChanged,
    EmailChangeRequested,
    PersonRegistered,
    RegistrationConflict,
    ResidentIdRevealed,
)
from services.identity.people.exceptions import PersonNotFound
from services.identity.people.models import User
from services.identity.people.schemas import (
    EmailConfirmation,
    MembershipView,
    Person,
    PersonUpdate,
    Registration,
    Verification,
)
from services.identity.protection import IdentifierProtector
from services.identity.roles import Role

RESIDENT_ID_PURPOSE = "users.resident_id"
# Who may raise a person's assurance level besides a platform admin: a trusted department
# system or officer whose token carries this scope.
VERIFY_SCOPE = "identity:verify"
EMAIL_CODE_TTL = timedelta(minutes=15)
EMAIL_CODE_MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class ProtectedResidentId:
    """A resident id number as it is stored."""

    lookup_hash: str
    encrypted: str
    masked: str


def protect_resident_id(protector: IdentifierProtector, number: str) -> ProtectedResidentId:
    """The keyed hash, ciphertext and masked form of a valid resident id number."""
    return ProtectedResidentId(
        lookup_hash=protector.lookup_hash(number),
        encrypted=protector.encrypt(number, purpose=RESIDENT_ID_PURPOSE),
        masked=identifiers.mask_resident_id(number),
    )


async def _tell_holder(session: AsyncSession, user_id: str) -> None:
    # The caller learns nothing; the holder is told someone tried (no enumeration).
    await outbox.add(session, new_event(RegistrationConflict(user_id=user_id), subject=user_id))


async def register(
    *,
    session: AsyncSession,
    protector: IdentifierProtector,
    subject_refs: SubjectRefs,
    registration: Registration,
) -> None:
    """Create a citizen's account at assurance level 1, or tell the holder of an existing one."""
    try:
        resident = identifiers.parse_resident_id(registration.resident_id, strict=True)
    except identifiers.InvalidIdentifier as exc:
        raise InvalidInput.for_field("resident_id", str(exc)) from exc
    try:
        phone = identifiers.normalise_phone(registration.phone)
    except identifiers.InvalidIdentifier as exc:
        raise InvalidInput.for_field("phone", str(exc)) from exc
    problems = passwords.password_problems(registration.password)
    if problems:
        raise InvalidInput.for_field("password", "the password needs " + "; ".join(problems))
    email = registration.email.lower() if registration.email else None

    protected = protect_resident_id(protector, resident.number)
    # Hashed on every path, so a known account answers no faster than a new one.
    password_hash = await passwords.hash_password(registration.password)
    existing = await people_repository.find_existing(
        session, resident_id_hash=protected.lookup_hash, phone=phone, email=email
    )
    if existing is not None:
        await _tell_holder(session, existing.id)
        return
    user = User(
        name=registration.name,
        phone=phone,
        email=email,
        resident_id_hash=protected.lookup_hash,
        resident_id_encrypted=protected.encrypted,
        resident_id_masked=protected.masked,
        password_hash=password_hash,
        acr=1,
        status="active",
    )
    try:
        # A savepoint: a twin registration committed meanwhile must look like any other.
        async with session.begin_nested():
            people_repository.add(session, user)
    except IntegrityError:
        existing = await people_repository.find_existing(
            session, resident_id_hash=protected.lookup_hash, phone=phone, email=email
        )
        if existing is None:
            raise
        await _tell_holder(session, existing.id)
        return
    organisations_repository.add(
        session, Membership(user_id=user.id, org_id=None, role=Role.CITIZEN)
    )
    await outbox.add(
        session,
        new_event(
            PersonRegistered(
                user_id=user.id,
                acr=1,
                region_code=resident.region_code,
                subject_ref=subject_refs.person(resident.number),
            ),
            subject=user.id,
        ),
    )


def _can_reveal(principal: Principal, user: User) -> bool:
    return principal.sub == user.id or principal.has_role(Role.PLATFORM_ADMIN)


async def _dept_admin_of_member(
    session: AsyncSession, *, principal: Principal, user_id: str
) -> bool:
    if principal.org is None or not principal.has_role(Role.DEPT_ADMIN):
        return False
    memberships = await organisations_repository.memberships_of_user(session, user_id=user_id)
    return any(m.org_id == principal.org for m in memberships)


def to_person(
    user: User,
    memberships: Sequence[Membership],
    *,
    protector: IdentifierProtector,
    reveal: bool,
    full_phone: bool = False,
) -> Person:
    """The API's view of a person; the full resident id only when ``reveal``."""
    resident_id = user.resident_id_masked
    if reveal and user.resident_id_encrypted:
        resident_id = protector.decrypt(user.resident_id_encrypted, purpose=RESIDENT_ID_PURPOSE)
    return Person(
        id=user.id,
        name=user.name,
        phone=user.phone if full_phone or not user.phone else identifiers.mask_phone(user.phone),
        email=user.email,
        resident_id=resident_id,
        resident_id_revealed=reveal and user.resident_id_encrypted is not None,
        acr=user.acr,
        status=user.status,
        memberships=[
            MembershipView(id=m.id, org_id=m.org_id, role=Role(m.role)) for m in memberships
        ],
        created_at=user.created_at,
    )


async def get_visible(
    *, session: AsyncSession, principal: Principal, user_id: str
) -> tuple[User, Sequence[Membership]]:
    """A person the caller may see: themselves, anyone for a platform admin, members of a
    department admin's own organisation; anyone else is "not found" (no enumeration)."""
    user = await people_repository.get(session, user_id=user_id)
    if user is None:
        raise PersonNotFound(f"No person {user_id}.")
    allowed = (
        principal.sub == user.id
        or principal.has_role(Role.PLATFORM_ADMIN)
        or await _dept_admin_of_member(session, principal=principal, user_id=user.id)
    )
    if not allowed:
        raise PersonNotFound(f"No person {user_id}.")
    memberships = await organisations_repository.memberships_of_user(session, user_id=user.id)
    return user, memberships


async def view(
    *,
    session: AsyncSession,
    protector: IdentifierProtector,
    principal: Principal,
    user_id: str,
    reveal: bool,
) -> Person:
    """A person as the caller may see them; revealing another's resident id is recorded."""
    user, memberships = await get_visible(session=session, principal=principal, user_id=user_id)
    if reveal and not _can_reveal(principal, user):
        raise Forbidden("Only the person and platform admins may see the full resident id.")
    if reveal and principal.sub != user.id:
        await outbox.add(
            session,
            new_event(
                ResidentIdRevealed(user_id=user.id, revealed_to=principal.sub), subject=user.id
            ),
        )
    person = to_person(
        user,
        memberships,
        protector=protector,
        reveal=reveal,
        full_phone=_can_reveal(principal, user),
    )
    if principal.sub == user.id:
        change = await people_repository.pending_email_change(session, user_id=user.id)
        person.pending_email = change.email if change is not None else None
    return person


async def update_self(
    *,
    session: AsyncSession,
    protector: IdentifierProtector,
    sender: CodeSender,
    principal: Principal,
    update: PersonUpdate,
) -> Person:
    """Change the caller's own name, remove their e-mail address, or ask to use a new one.

    A new address waits for the code sent to it. The answer is the same whether or not another
    account uses the address (no enumeration): then no code is sent, that account's holder is
    told, and the change can never be confirmed.
    """
    user, memberships = await get_visible(
        session=session, principal=principal, user_id=principal.sub
    )
    if update.name is not None:
        user.name = update.name
    pending = None
    if "email" in update.model_fields_set:
        email = update.email.lower() if update.email else None
        if email is None:
            await people_repository.drop_email_change(session, user_id=user.id)
            if user.email is not None:
                user.email = None
                await _email_changed(session, user.id)
        elif email != user.email:
            await _ask_for_email(
                session, protector=protector, sender=sender, user=user, email=email
            )
            pending = email
        else:
            await people_repository.drop_email_change(session, user_id=user.id)
    await session.flush()
    if pending is None:
        change = await people_repository.pending_email_change(session, user_id=user.id)
        pending = change.email if change is not None else None
    person = to_person(user, memberships, protector=protector, reveal=False, full_phone=True)
    person.pending_email = pending
    return person


def _email_code_hash(protector: IdentifierProtector, *, user_id: str, email: str, code: str) -> str:
    # Keyed and bound to the person and the address: a code proves only this change.
    return protector.lookup_hash(f"email-change:{user_id}:{email}:{code}")


async def _ask_for_email(
    session: AsyncSession,
    *,
    protector: IdentifierProtector,
    sender: CodeSender,
    user: User,
    email: str,
) -> None:
    code = f"{secrets.randbelow(10**6):06d}"
    await people_repository.put_email_change(
        session,
        user_id=user.id,
        email=email,
        code_hash=_email_code_hash(protector, user_id=user.id, email=email, code=code),
        expires_at=utcnow() + EMAIL_CODE_TTL,
    )
    holder = await people_repository.holder_of_email(session, email=email)
    if holder is not None:
        # The code goes nowhere: the change cannot complete, and the caller cannot tell.
        await outbox.add(session, new_event(EmailChangeConflict(user_id=holder), subject=holder))
    else:
        sender.send_code(channel="email", address=email, code=code, purpose="email_change")
    await outbox.add(session, new_event(EmailChangeRequested(user_id=user.id), subject=user.id))


async def _email_changed(session: AsyncSession, user_id: str) -> None:
    await outbox.add(session, new_event(EmailChanged(user_id=user_id), subject=user_id))


def _aware(moment: datetime) -> datetime:
    # SQLite gives naive datetimes back; they were stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def email_code_refused() -> InvalidInput:
    """The one answer to every failed confirmation."""
    return InvalidInput.for_field(
        "code", "the code is wrong or expired: ask for a new one by changing your e-mail again"
    )


async def confirm_email(
    *,
    session: AsyncSession,
    protector: IdentifierProtector,
    principal: Principal,
    confirmation: EmailConfirmation,
) -> Person | None:
    """Use the address a person asked for, given the code sent to it. None when refused (no
    pending change, expired, too many tries, wrong code, address taken meanwhile): the caller
    answers ``email_code_refused()`` and keeps what this counted (tries, a dropped change)."""
    user, memberships = await get_visible(
        session=session, principal=principal, user_id=principal.sub
    )
    change = await people_repository.pending_email_change(session, user_id=user.id)
    if change is None:
        return None
    expected = _email_code_hash(
        protector, user_id=user.id, email=change.email, code=confirmation.code
    )
    if (
        change.attempts >= EMAIL_CODE_MAX_ATTEMPTS
        or _aware(change.expires_at) <= utcnow()
        or not hmac.compare_digest(expected, change.code_hash)
    ):
        change.attempts += 1
        await session.flush()
        return None
    if await people_repository.holder_of_email(session, email=change.email) is not None:
        await people_repository.drop_email_change(session, user_id=user.id)
        return None
    user.email = change.email
    await people_repository.drop_email_change(session, user_id=user.id)
    await _email_changed(session, user.id)
    await session.flush()
    return to_person(user, memberships, protector=protector, reveal=False, full_phone=True)


async def search(
    *,
    session: AsyncSession,
    protector: IdentifierProtector,
    principal: Principal,
    name_prefix: str | None,
    phone: str | None,
    resident_id: str | None,
    org_id: str | None,
    after: str | None,
    limit: int,
) -> list[Person]:
    """Search people: platform admins everyone, department admins their own organisation."""
    if principal.has_role(Role.PLATFORM_ADMIN):
        scope_org = org_id
    elif principal.has_role(Role.DEPT_ADMIN) and principal.org is not None:
        if org_id is not None and org_id != principal.org:
            raise Forbidden("A department admin searches only their own organisation.")
        scope_org = principal.org
    else:
        raise Forbidden("Searching people needs the platform_admin or dept_admin role.")
    resident_id_hash = None
    if resident_id:
        try:
            number = identifiers.parse_resident_id(resident_id).number
        except identifiers.InvalidIdentifier as exc:
            raise InvalidInput.for_field("resident_id", str(exc), location="query") from exc
        resident_id_hash = protector.lookup_hash(number)
    phone_number = None
    if phone:
        try:
            phone_number = identifiers.normalise_phone(phone)
        except identifiers.InvalidIdentifier as exc:
            raise InvalidInput.for_field("phone", str(exc), location="query") from exc
    users = await people_repository.search(
        session,
        name_prefix=name_prefix,
        phone=phone_number,
        resident_id_hash=resident_id_hash,
        org_id=scope_org,
        after=after,
        limit=limit,
    )
    memberships = await organisations_repository.memberships_of_users(
        session, user_ids=[u.id for u in users]
    )
    by_user: dict[str, list[Membership]] = {}
    for membership in memberships:
        by_user.setdefault(membership.user_id, []).append(membership)
    return [to_person(u, by_user.get(u.id, []), protector=protector, reveal=False) for u in users]


async def verify(
    *,
    session: AsyncSession,
    protector: IdentifierProtector,
    principal: Principal,
    user_id: str,
    verification: Verification,
) -> Person:
    """Raise a person's assurance level after a real-name verification (never lowers it)."""
    # The scope counts for a department's system (client credentials, no person signed in)
    # or an officer; never for raising one's own level.
    entitled_by_scope = principal.has_scope(VERIFY_SCOPE) and (
        principal.acr == 0 or principal.has_role(Role.OFFICER)
    )
    if principal.sub == user_id or not (
        principal.has_role(Role.PLATFORM_ADMIN) or entitled_by_scope
    ):
        raise Forbidden(
            f"Verifying people needs the platform_admin role, or the {VERIFY_SCOPE} scope on a "
            "department system's or an officer's token; no one verifies themselves."
        )
    user = await people_repository.get(session, user_id=user_id)
    if user is None:
        raise PersonNotFound(f"No person {user_id}.")
    previous = user.acr
    if verification.level > previous:
        user.acr = verification.level
        await outbox.add(
            session,
            new_event(
                AssuranceRaised(
                    user_id=user.id,
                    previous_acr=previous,
                    acr=verification.level,
                    method=verification.method,
                    verified_by=principal.sub,
                ),
                subject=user.id,
            ),
        )
        await session.flush()
    memberships = await organisations_repository.memberships_of_user(session, user_id=user.id)
    return to_person(user, memberships, protector=protector, reveal=False)
