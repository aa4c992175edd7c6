"""The identity part's whole schema: the base and every concept's tables."""

from __future__ import annotations

from services.identity.base import Base, event_tables
from services.identity.oauth.models import OAUTH_MODELS
from services.identity.organisations.models import Membership, Organisation
from services.identity.people.models import User

__all__ = ["OAUTH_MODELS", "Base", "Membership", "Organisation", "User", "event_tables"]
