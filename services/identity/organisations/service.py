"""The rules about organisations, the region tree and who holds which role where."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.errors import Forbidden, InvalidInput
from libs.common.events import new_event, outbox
from libs.common.subjects import SubjectRefs
from services.identity import identifiers, regions
from services.identity.organisations import repository as organisations_repository
from services.identity.organisations.events import (
    OrganisationRegistered,
    OrganisationUpdated,
    RoleGranted,
    RoleRevoked,
)
from services.identity.organisations.exceptions import (
    MembershipExists,
    MembershipNotFound,
    OrganisationExists,
    OrganisationNotFound,
    RegionNotFound,
)
from services.identity.organisations.models import Membership, Organisation
from services.identity.organisations.schemas import (
    MembershipCreate,
    OrganisationCreate,
    OrganisationUpdate,
    RegionTree,
)
from services.identity.organisations.schemas import Organisation as OrganisationView
from services.identity.organisations.schemas import Region as RegionView
from services.identity.people import repository as people_repository
from services.identity.people.exceptions import PersonNotFound
from services.identity.people.models import User
from services.identity.protection import IdentifierProtector
from services.identity.roles import DEPARTMENT_ROLES, Role

CREDIT_CODE_PURPOSE = "organisations.credit_code"
PLATFORM_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.AUDITOR, Role.EVALUATOR, Role.CITIZEN})


def to_view(
    org: Organisation, *, protector: IdentifierProtector, principal: Principal | None
) -> OrganisationView:
    """The API's view of an organisation; its own people see its full credit code."""
    entitled = principal is not None and principal.acts_for(org.id)
    region = regions.get_region(org.region_code)
    return OrganisationView(
        id=org.id,
        kind="department" if org.kind == "department" else "enterprise",
        name=org.name,
        name_en=org.name_en,
        region_code=org.region_code,
        region_name=region.name_zh if region else None,
        credit_code=(
            protector.decrypt(org.credit_code_encrypted, purpose=CREDIT_CODE_PURPOSE)
            if entitled
            else org.credit_code_masked
        ),
        status=org.status,
        created_at=org.created_at,
    )


async def register(
    *,
    session: AsyncSession,
    protector: IdentifierProtector,
    subject_refs: SubjectRefs,
    principal: Principal,
    draft: OrganisationCreate,
) -> Organisation:
    """Register a department or an enterprise (platform admins only)."""
    if not principal.has_role(Role.PLATFORM_ADMIN):
        raise Forbidden("Registering organisations needs the platform_admin role.")
    if not regions.is_known_region(draft.region_code):
        raise InvalidInput.for_field(
            "region_code", f"{draft.region_code} is not a known division code"
        )
    try:
        code = identifiers.parse_credit_code(draft.credit_code)
    except identifiers.InvalidIdentifier as exc:
        raise InvalidInput.for_field("credit_code", str(exc)) from exc
    lookup = protector.lookup_hash(code.code)
    if await organisations_repository.get_by_credit_code_hash(session, credit_code_hash=lookup):
        raise OrganisationExists("An organisation with this credit code is registered already.")
    org = Organisation(
        kind=draft.kind,
        name=draft.name,
        name_en=draft.name_en,
        region_code=draft.region_code,
        credit_code_hash=lookup,
        credit_code_encrypted=protector.encrypt(code.code, purpose=CREDIT_CODE_PURPOSE),
        credit_code_masked=identifiers.mask_credit_code(code.code),
        status="active",
    )
    organisations_repository.add(session, org)
    await session.flush()
    await outbox.add(
        session,
        new_event(
            OrganisationRegistered(
                org_id=org.id,
                kind=org.kind,
                name=org.name,
                region_code=org.region_code,
                subject_ref=subject_refs.enterprise(code.code),
            ),
            subject=org.id,
        ),
    )
    return org


async def get(*, session: AsyncSession, org_id: str) -> Organisation:
    """An organisation, or a not-found problem."""
    org = await organisations_repository.get(session, org_id=org_id)
    if org is None:
        raise OrganisationNotFound(f"No organisation {org_id}.")
    return org


async def search(
    *,
    session: AsyncSession,
    kind: str | None,
    region_code: str | None,
    name_contains: str | None,
    after: str | None,
    limit: int,
) -> Sequence[Organisation]:
    """Organisations, optionally of one kind, within a region (and everything under it)."""
    region_codes = None
    if region_code is not None:
        if not regions.is_known_region(region_code):
            raise RegionNotFound(f"No region {region_code}.")
        region_codes = [region_code, *(r.code for r in _descendants(region_code))]
    return await organisations_repository.search(
        session,
        kind=kind,
        region_codes=region_codes,
        name_contains=name_contains,
        after=after,
        limit=limit,
    )


def _descendants(code: str) -> list[regions.Region]:
    found: list[regions.Region] = []
    for child in regions.children(code):
        found.append(child)
        found.extend(_descendants(child.code))
    return found


async def update(
    *,
    session: AsyncSession,
    protector: IdentifierProtector,
    subject_refs: SubjectRefs,
    principal: Principal,
    org_id: str,
    update: OrganisationUpdate,
) -> Organisation:
    """Rename or suspend an organisation: platform admins, or its own department admin."""
    org = await get(session=session, org_id=org_id)
    own_admin = principal.org == org.id and principal.has_role(Role.DEPT_ADMIN)
    if not (principal.has_role(Role.PLATFORM_ADMIN) or own_admin):
        raise Forbidden("Only platform admins and the organisation's own admins may change it.")
    if update.status is not None and not principal.has_role(Role.PLATFORM_ADMIN):
        raise Forbidden("Only platform admins may suspend or reinstate an organisation.")
    if update.name is not None:
        org.name = update.name
    if "name_en" in update.model_fields_set:
        org.name_en = update.name_en
    if update.status is not None:
        org.status = update.status
    await outbox.add(
        session,
        new_event(
            OrganisationUpdated(
                org_id=org.id,
                name=org.name,
                status=org.status,
                kind=org.kind,
                subject_ref=subject_refs.enterprise(
                    protector.decrypt(org.credit_code_encrypted, purpose=CREDIT_CODE_PURPOSE)
                ),
            ),
            subject=org.id,
        ),
    )
    await session.flush()
    return org


def _may_manage_role(principal: Principal, *, org: Organisation | None, role: Role) -> bool:
    if principal.has_role(Role.PLATFORM_ADMIN):
        return True
    if org is None or principal.org != org.id:
        return False
    if role in DEPARTMENT_ROLES:
        return principal.has_role(Role.DEPT_ADMIN)
    if role == Role.ENTERPRISE_AGENT:
        return principal.has_role(Role.ENTERPRISE_AGENT)
    return False


async def _check_role_fits(
    session: AsyncSession, *, org_id: str | None, role: Role
) -> Organisation | None:
    if role in PLATFORM_ROLES:
        if org_id is not None:
            raise InvalidInput.for_field(
                "org_id", f"{role.value} is a platform-wide role: leave org_id empty"
            )
        return None
    if org_id is None:
        raise InvalidInput.for_field(
            "org_id", f"{role.value} is held in an organisation: give org_id"
        )
    org = await get(session=session, org_id=org_id)
    wanted = "department" if role in DEPARTMENT_ROLES else "enterprise"
    if org.kind != wanted:
        raise InvalidInput.for_field(
            "role", f"{role.value} is held in a {wanted}, and {org.name} is not one"
        )
    return org


async def _grantee(
    session: AsyncSession,
    *,
    protector: IdentifierProtector,
    principal: Principal,
    draft: MembershipCreate,
) -> User:
    """The person a grant names. Platform admins name anyone; others name by ``user_id`` only
    people already in their own organisation, and anyone else by the exact resident id number,
    so an admin cannot reach (and then read) a person by an id they happened to learn. Every
    miss is the same 404."""
    if draft.resident_id is not None:
        try:
            number = identifiers.parse_resident_id(draft.resident_id).number
        except identifiers.InvalidIdentifier as exc:
            raise InvalidInput.for_field("resident_id", str(exc)) from exc
        user = await people_repository.find_by_login(
            session, phone=None, email=None, resident_id_hash=protector.lookup_hash(number)
        )
        if user is None:
            raise PersonNotFound("No person holds this resident id number.")
        return user
    assert draft.user_id is not None
    user = await people_repository.get(session, user_id=draft.user_id)
    if user is not None and not principal.has_role(Role.PLATFORM_ADMIN):
        memberships = await organisations_repository.memberships_of_user(session, user_id=user.id)
        if principal.org is None or not any(m.org_id == principal.org for m in memberships):
            user = None
    if user is None:
        raise PersonNotFound(f"No person {draft.user_id}.")
    return user


async def grant(
    *,
    session: AsyncSession,
    protector: IdentifierProtector,
    principal: Principal,
    draft: MembershipCreate,
) -> Membership:
    """Give a person a role; department admins manage their own department's officers."""
    org = await _check_role_fits(session, org_id=draft.org_id, role=draft.role)
    if not _may_manage_role(principal, org=org, role=draft.role):
        raise Forbidden("You may not grant this role here.")
    user = await _grantee(session, protector=protector, principal=principal, draft=draft)
    existing = await organisations_repository.find_membership(
        session, user_id=user.id, org_id=draft.org_id, role=draft.role
    )
    if existing is not None:
        raise MembershipExists(
            "The person holds this role here already.", membership_id=existing.id
        )
    membership = Membership(user_id=user.id, org_id=draft.org_id, role=draft.role)
    organisations_repository.add(session, membership)
    await session.flush()
    await outbox.add(
        session,
        new_event(
            RoleGranted(
                membership_id=membership.id,
                user_id=membership.user_id,
                org_id=membership.org_id,
                role=membership.role,
                granted_by=principal.sub,
            ),
            subject=membership.user_id,
        ),
    )
    return membership


async def revoke(*, session: AsyncSession, principal: Principal, membership_id: str) -> None:
    """Take a role away, with the same entitlement as granting it."""
    membership = await organisations_repository.get_membership(session, membership_id=membership_id)
    if membership is None:
        raise MembershipNotFound(f"No membership {membership_id}.")
    org = (
        await organisations_repository.get(session, org_id=membership.org_id)
        if membership.org_id
        else None
    )
    if not _may_manage_role(principal, org=org, role=Role(membership.role)):
        raise MembershipNotFound(f"No membership {membership_id}.")
    await organisations_repository.delete_membership(session, membership_id=membership.id)
    await outbox.add(
        session,
        new_event(
            RoleRevoked(
                membership_id=membership.id,
                user_id=membership.user_id,
                org_id=membership.org_id,
                role=membership.role,
                revoked_by=principal.sub,
            ),
            subject=membership.user_id,
        ),
    )


async def memberships_of_org(
    *, session: AsyncSession, principal: Principal, org_id: str, after: str | None, limit: int
) -> Sequence[Membership]:
    """Who holds which role in an organisation: its own admins and agents, platform admins."""
    org = await get(session=session, org_id=org_id)
    own = principal.org == org.id and (
        principal.has_role(Role.DEPT_ADMIN) or principal.has_role(Role.ENTERPRISE_AGENT)
    )
    if not (principal.has_role(Role.PLATFORM_ADMIN) or own):
        raise Forbidden("Only the organisation's admins and platform admins see its members.")
    return await organisations_repository.memberships_of_org(
        session, org_id=org.id, after=after, limit=limit
    )


def region_view(code: str) -> RegionView:
    """One region, or a not-found problem."""
    region = regions.get_region(code)
    if region is None:
        raise RegionNotFound(f"No region {code}.")
    return _region(region)


def _region(region: regions.Region) -> RegionView:
    return RegionView(
        code=region.code,
        name=region.name_zh,
        name_en=region.name_en,
        level=region.level,
        parent_code=region.parent_code,
    )


def region_tree(code: str) -> RegionTree:
    """The region and everything under it."""
    if regions.get_region(code) is None:
        raise RegionNotFound(f"No region {code}.")

    def build(node: regions.RegionNode) -> RegionTree:
        return RegionTree(
            **_region(node.region).model_dump(), children=[build(c) for c in node.children]
        )

    return build(regions.region_tree(code))
