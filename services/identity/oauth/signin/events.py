"""Events about signing in."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from libs.common.events import EventData


class SignInFailed(EventData):
    """A sign-in was refused. ``reason``: unknown_account, wrong_password, locked, inactive,
    ip_throttled. ``user_id`` is empty when no account matched."""

    event_type: ClassVar[str] = "pingtai.identity.signin.failed"

    user_id: str | None
    login_kind: str  # phone | email | resident_id | other
    reason: str
    client_id: str
    ip: str


class SignInSucceeded(EventData):
    """A person signed in with their password."""

    event_type: ClassVar[str] = "pingtai.identity.signin.succeeded"

    user_id: str
    client_id: str
    ip: str
    acr: int
    amr: list[str]


class AccountLocked(EventData):
    """Too many failed sign-ins: the account is locked until ``until``."""

    event_type: ClassVar[str] = "pingtai.identity.signin.locked"

    user_id: str
    until: datetime
    failures: int
    ip: str
