"""Events about signing keys."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from libs.common.events import EventData


class SigningKeysRotated(EventData):
    """New signing keys were published; the previous ones retire when the new ones activate."""

    event_type: ClassVar[str] = "pingtai.identity.signing_key.rotated"

    new_kids: list[str]
    retired_kids: list[str]
    dropped_kids: list[str]
    activates_at: datetime
