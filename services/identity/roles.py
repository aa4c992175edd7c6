"""Which of the platform's roles are held in an organisation, and which platform-wide."""

from __future__ import annotations

from libs.common.auth import Role

# Roles held for an organisation; the others are platform-wide (membership without org).
DEPARTMENT_ROLES = frozenset({Role.OFFICER, Role.DEPT_ADMIN})
ORG_ROLES = DEPARTMENT_ROLES | {Role.ENTERPRISE_AGENT}

__all__ = ["DEPARTMENT_ROLES", "ORG_ROLES", "Role"]
