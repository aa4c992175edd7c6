"""Settings of SLA clocks, live progress and webhooks, mixed into ``WorkflowSettings``.

Read from ``PINGTAI_WORKFLOW_SLA_*``, ``PINGTAI_WORKFLOW_LIVE_*`` and
``PINGTAI_WORKFLOW_WEBHOOKS_*`` (docs/workflow-sla-and-live.md).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field


class SlaLiveWebhookSettings(BaseModel):
    """The SLA timer, the server-sent event streams and webhook deliveries."""

    # The SLA timer's tick; a deadline is raised at most this long after it passed.
    sla_timer_poll_s: float = Field(default=5.0, gt=0, le=3600)
    # Clocks claimed per transaction.
    sla_timer_batch: int = Field(default=100, ge=1, le=5000)
    # A reminder this many working days before the deadline (0: no reminders).
    sla_reminder_working_days: int = Field(default=1, ge=0, le=30)
    # Whether this replica runs the timer (every replica may; each clock fires once).
    sla_timer_enabled: bool = True

    # A comment line on every idle stream this often, so proxies keep it open.
    live_keepalive_s: float = Field(default=15.0, gt=0, le=300)
    # How often this process looks in the database for history written by other replicas.
    live_poll_s: float = Field(default=1.0, gt=0, le=60)
    # An id missing below the newest seen is waited for this long (a transaction still
    # committing on PostgreSQL) before the stream moves past it.
    live_gap_grace_s: float = Field(default=10.0, ge=0, le=600)
    # Entries replayed at most after a Last-Event-ID (older ones: read the history).
    live_replay_limit: int = Field(default=1000, ge=1, le=100_000)
    # What the browser waits before reconnecting (the "retry:" field), in milliseconds.
    live_retry_ms: int = Field(default=3000, ge=0, le=600_000)

    # The delay before each retry of a failed delivery (the first attempt is at once): after
    # the last, the delivery is given up. The default follows common practice (Svix, Standard
    # Webhooks): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: 8 attempts over about 28 hours.
    webhooks_retry_schedule_s: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        max_length=30,
    )
    webhooks_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # The delivery worker's safety poll (it also wakes when this process records deliveries).
    webhooks_poll_s: float = Field(default=2.0, gt=0, le=600)
    webhooks_batch: int = Field(default=20, ge=1, le=500)
    # In production, URLs that resolve to private, loopback or link-local addresses are
    # refused unless this is set (e.g. departments' systems inside the government network).
    webhooks_allow_private_addresses: bool = False
    # Whether this replica sends deliveries (every replica may; each is claimed by one).
    webhooks_deliverer_enabled: bool = True
    webhooks_max_per_org: int = Field(default=20, ge=1, le=1000)
