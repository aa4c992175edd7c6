"""The platform's roles, and which are held in an organisation."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A role in the ``roles`` claim."""

    CITIZEN = "citizen"
    ENTERPRISE_AGENT = "enterprise_agent"
    OFFICER = "officer"
    DEPT_ADMIN = "dept_admin"
    PLATFORM_ADMIN = "platform_admin"
    AUDITOR = "auditor"
    EVALUATOR = "evaluator"


# Roles held for an organisation; the others are platform-wide (membership without org).
ORG_ROLES = frozenset({Role.ENTERPRISE_AGENT, Role.OFFICER, Role.DEPT_ADMIN})
DEPARTMENT_ROLES = frozenset({Role.OFFICER, Role.DEPT_ADMIN})
