"""Who is calling: the principal an access token names, and the platform's roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    """A role a membership gives a person in an organisation (DESIGN, "Identity")."""

    CITIZEN = "citizen"
    ENTERPRISE_AGENT = "enterprise_agent"
    OFFICER = "officer"
    DEPT_ADMIN = "dept_admin"
    PLATFORM_ADMIN = "platform_admin"
    AUDITOR = "auditor"
    EVALUATOR = "evaluator"


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller of one request, read from its access token."""

    sub: str
    client_id: str
    org: str | None
    roles: frozenset[Role]
    # 0 when no person signed in (client credentials), else 1, 2 or 3 (DESIGN: assurance level).
    acr: int
    scopes: frozenset[str]
    jti: str
    expires_at: datetime

    def has_role(self, role: Role) -> bool:
        """Whether the token grants ``role``."""
        return role in self.roles

    def has_scope(self, scope: str) -> bool:
        """Whether the token grants ``scope``."""
        return scope in self.scopes

    def acts_for(self, org_id: str) -> bool:
        """Whether the caller acts for ``org_id``: its own organisation, or any as admin."""
        return self.org == org_id or Role.PLATFORM_ADMIN in self.roles
