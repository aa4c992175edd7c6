"""The webhook deliverer: sends due deliveries, signed, and retries failures on a schedule.

Deliveries are rows, so nothing is lost when a process stops. A replica claims a due delivery
by moving its ``next_attempt_at`` past the request's timeout with a conditional UPDATE on its
``version`` (and ``FOR UPDATE SKIP LOCKED`` on PostgreSQL), commits, sends it outside any
transaction, then records the result under the version it claimed. A replica that dies
mid-send leaves the claim to expire: the delivery is sent again, with the same ``webhook-id``,
so delivery is at least once and receivers drop repeats by that id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from fastapi import FastAPI
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from standardwebhooks import Webhook as Signer

from libs.common.database import Database
from services.workflow.ids import as_utc, utcnow
from services.workflow.sla.loops import repeat, running
from services.workflow.sla.settings import SlaLiveWebhookSettings
from services.workflow.webhooks import repository as webhooks_repository
from services.workflow.webhooks import secrets as webhook_secrets
from services.workflow.webhooks import urls as webhook_urls
from services.workflow.webhooks.models import WebhookDelivery

log = structlog.get_logger("pingtai.workflow.webhooks")

USER_AGENT = "Pingtai-Webhooks/1"
# Seconds a claim outlives the request's timeout before another replica may take it over.
CLAIM_MARGIN_S = 30.0
_wakeups: set[asyncio.Event] = set()


def wake_after_commit(session: AsyncSession) -> None:
    """Wake this process's deliverers once ``session`` commits (it recorded deliveries)."""

    def wake(_session: Session) -> None:
        for wakeup in list(_wakeups):
            wakeup.set()

    sa_event.listen(session.sync_session, "after_commit", wake, once=True)


def signed_headers(*, secret: str, delivery_id: str, payload: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: id, timestamp and the HMAC-SHA256."""
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Signer(secret).sign(msg_id=delivery_id, timestamp=at, data=payload),
    }


class WebhookDeliverer:
    """One replica's deliverer; any number may run against the same database."""

    def __init__(
        self,
        database: Database,
        *,
        part_secret: str,
        retry_schedule_s: Sequence[float],
        timeout_s: float = 10.0,
        batch: int = 20,
        poll_s: float = 2.0,
        check_addresses: bool = False,
        client: httpx.AsyncClient | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.part_secret = part_secret
        self.retry_schedule_s = list(retry_schedule_s)
        self.timeout_s = timeout_s
        self.batch = batch
        self.poll_s = poll_s
        self.check_addresses = check_addresses
        # Our own client checks each address it connects to; a client passed in (tests) is
        # checked before each attempt instead.
        self._precheck = check_addresses and client is not None
        self.client = client or webhook_urls.pinned_client(
            timeout_s=timeout_s, check=check_addresses
        )
        self.now = now
        self.wakeup = asyncio.Event()

    @property
    def max_attempts(self) -> int:
        """The first attempt and one per entry of the retry schedule."""
        return len(self.retry_schedule_s) + 1

    async def deliver_due(self) -> int:
        """Send every delivery due now (claimed by this replica); returns how many attempts."""
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._attempt(*c) for c in claimed))
        return len(claimed)

    async def _claim(self) -> list[tuple[WebhookDelivery, int, str, str]]:
        now = self.now()
        lease_until = now + timedelta(seconds=self.timeout_s + CLAIM_MARGIN_S)
        claimed: list[tuple[WebhookDelivery, int, str, str]] = []
        async with self.database.sessionmaker() as session:
            skip_locked = session.bind.dialect.name == "postgresql"
            due = await webhooks_repository.due_deliveries(
                session, now=now, limit=self.batch, skip_locked=skip_locked
            )
            for delivery in due:
                subscription = await webhooks_repository.get(
                    session, webhook_id=delivery.subscription_id
                )
                if subscription is None:
                    continue  # deleted meanwhile; the cascade removes the row
                if await webhooks_repository.update_if_version(
                    session,
                    delivery_id=delivery.id,
                    version=delivery.version,
                    values={"next_attempt_at": lease_until},
                ):
                    secret = webhook_secrets.unseal(
                        subscription.sealed_secret, part_secret=self.part_secret
                    )
                    claimed.append((delivery, delivery.version + 1, subscription.url, secret))
            await session.commit()
        return claimed

    async def _attempt(
        self, delivery: WebhookDelivery, version: int, url: str, secret: str
    ) -> None:
        at = self.now()
        started = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            if self._precheck:
                await webhook_urls.check_destination(url)
            response = await self.client.post(
                url,
                content=delivery.payload.encode(),
                headers=signed_headers(
                    secret=secret, delivery_id=delivery.id, payload=delivery.payload, at=at
                ),
                timeout=self.timeout_s,
            )
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"the receiver answered {status_code}"
        except webhook_urls.RefusedUrl as refused:
            error = f"refused: {refused}"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"[:500] or type(failure).__name__
        duration_ms = int((time.monotonic() - started) * 1000)
        await self._record(delivery, version, at=at, status_code=status_code, error=error,
                           duration_ms=duration_ms)  # fmt: skip

    async def _record(
        self,
        delivery: WebhookDelivery,
        version: int,
        *,
        at: datetime,
        status_code: int | None,
        error: str | None,
        duration_ms: int,
    ) -> None:
        attempts = delivery.attempts + 1
        entry = {
            "at": as_utc(at).isoformat(),
            "status_code": status_code,
            "error": error,
            "duration_ms": duration_ms,
        }
        values: dict[str, Any] = {
            "attempts": attempts,
            "attempt_log": [*delivery.attempt_log, entry],
        }
        if error is None:
            values.update(status="delivered", delivered_at=self.now(), next_attempt_at=None)
        elif attempts >= self.max_attempts:
            values.update(status="failed", next_attempt_at=None)
            log.warning("webhook_delivery_given_up", delivery_id=delivery.id, error=error)
        else:
            delay = self.retry_schedule_s[attempts - 1]
            values.update(next_attempt_at=self.now() + timedelta(seconds=delay))
        async with self.database.sessionmaker() as session:
            recorded = await webhooks_repository.update_if_version(
                session, delivery_id=delivery.id, version=version, values=values
            )
            await session.commit()
        if not recorded:
            # The claim expired and another replica took the delivery over: its result counts.
            log.info("webhook_result_superseded", delivery_id=delivery.id)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver whenever woken and every ``poll_s``, until ``stop``."""
        _wakeups.add(self.wakeup)
        try:
            await repeat(
                self._deliver_all, stop=stop, wakeup=self.wakeup, poll_s=self.poll_s,
                failure="webhook_delivery_round_failed",
            )  # fmt: skip
        finally:
            _wakeups.discard(self.wakeup)

    async def _deliver_all(self) -> None:
        while await self.deliver_due() >= self.batch:
            pass

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()


def deliverer_for(app: FastAPI) -> WebhookDeliverer:
    """A deliverer configured from the app's settings."""
    settings: SlaLiveWebhookSettings = app.state.settings
    return WebhookDeliverer(
        app.state.database,
        part_secret=app.state.settings.secret_key,
        retry_schedule_s=settings.webhooks_retry_schedule_s,
        timeout_s=settings.webhooks_timeout_s,
        batch=settings.webhooks_batch,
        poll_s=settings.webhooks_poll_s,
        check_addresses=checks_addresses(app),
    )


def checks_addresses(app: FastAPI) -> bool:
    """Whether webhook hosts must resolve to public addresses (production, unless allowed)."""
    settings = app.state.settings
    return bool(settings.env == "production" and not settings.webhooks_allow_private_addresses)


@asynccontextmanager
async def webhooks_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run this replica's deliverer while the app runs."""
    if not app.state.settings.webhooks_deliverer_enabled:
        yield
        return
    deliverer = deliverer_for(app)
    app.state.webhook_deliverer = deliverer
    try:
        async with running("workflow-webhooks", deliverer.run, wakeup=deliverer.wakeup):
            yield
    finally:
        await deliverer.close()
