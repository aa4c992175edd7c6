"""Sending one-time codes to a person's address: a stub that writes them to the log.

The platform has no e-mail or SMS gateway yet. In development the code is logged (WARNING, so
it shows in `pingtai up`'s output) for whoever is trying the flow; anywhere else it is *not*
logged, only that a code could not be delivered, and the change cannot be confirmed until a
real sender replaces this one. Codes never travel in events: the outbox and the stream keep
events, and every consumer could read them.
"""

from __future__ import annotations

import structlog

log = structlog.get_logger("pingtai.identity.notifications")


class CodeSender:
    """Delivers a one-time code to an e-mail address (or, later, a phone)."""

    def __init__(self, *, development: bool) -> None:
        self.development = development

    def send_code(self, *, channel: str, address: str, code: str, purpose: str) -> None:
        """Deliver ``code`` to ``address`` (here: log it, in development only)."""
        if self.development:
            log.warning(
                "verification_code_stub", channel=channel, to=address, code=code, purpose=purpose
            )
        else:
            log.error("verification_code_not_sent", channel=channel, purpose=purpose)
