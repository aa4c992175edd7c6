"""A circuit breaker per upstream: fast 503s while a part is down, one probe to recover."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from enum import StrEnum

import structlog
from prometheus_client import Gauge

log = structlog.get_logger("pingtai.gateway.breaker")

BREAKER_STATE = Gauge(
    "pingtai_gateway_breaker_open",
    "1 while the gateway's circuit breaker for an upstream is open or half-open, else 0.",
    ["upstream"],
)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Closed: requests pass, ``failures`` failures in a row open it. Open: refused at once for
    ``open_s``. Then half-open: one request passes as a probe; its success closes the breaker,
    its failure opens it again. A failure is the part not answering (refused, reset, timed
    out); an answer of any status, 5xx included, is the part alive."""

    def __init__(
        self,
        upstream: str,
        *,
        failures: int = 5,
        open_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstream = upstream
        self.failures = failures
        self.open_s = open_s
        self._clock = clock
        self.state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False
        BREAKER_STATE.labels(upstream).set(0)

    def allow(self) -> bool:
        """Whether a request may go to the upstream now (a half-open breaker lets one probe)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.open_s:
                return False
            self.state = BreakerState.HALF_OPEN
            self._probing = False
            log.info("breaker_half_open", upstream=self.upstream)
        if self._probing:
            return False
        self._probing = True
        return True

    def retry_after_s(self) -> int:
        """Seconds until the next probe may go."""
        return max(1, math.ceil(self.open_s - (self._clock() - self._opened_at)))

    def succeeded(self) -> None:
        """The upstream answered."""
        self._consecutive = 0
        if self.state is not BreakerState.CLOSED:
            log.info("breaker_closed", upstream=self.upstream)
            self.state = BreakerState.CLOSED
            self._probing = False
            BREAKER_STATE.labels(self.upstream).set(0)

    def failed(self) -> None:
        """The upstream did not answer."""
        self._consecutive += 1
        if self.state is BreakerState.HALF_OPEN or self._consecutive >= self.failures:
            if self.state is not BreakerState.OPEN:
                log.warning("breaker_opened", upstream=self.upstream, failures=self._consecutive)
            self.state = BreakerState.OPEN
            self._opened_at = self._clock()
            self._probing = False
            BREAKER_STATE.labels(self.upstream).set(1)

    def released(self) -> None:
        """A probe that ended without a verdict (the client left): let another probe go."""
        if self.state is BreakerState.HALF_OPEN:
            self._probing = False
