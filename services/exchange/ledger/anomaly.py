"""Anomaly detection: a client reading far more distinct subjects than usual.

Each process keeps, per ``client_id``, the distinct subjects it read in a sliding window of
``window_s`` seconds. A client crosses its limit when that count exceeds
``max(threshold, baseline_factor * baseline)``, where ``baseline`` is a moving average of the
client's distinct subjects per window; it is reported once per window. The counts live in one
process: with several replicas behind a balancer each sees about its share of a client's reads
(docs/exchange-ledger.md says what that means for accuracy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Weight of the newest window in the baseline's moving average.
_BASELINE_WEIGHT = 0.2


@dataclass(frozen=True, slots=True)
class AnomalyFinding:
    """A client over its limit."""

    client_id: str
    actor_org_id: str | None
    distinct_subjects: int
    window_s: float
    threshold: int
    baseline: float


@dataclass(slots=True)
class _ClientWindow:
    # subject_ref -> when last read, oldest first (re-reading moves a subject to the end).
    last_read: dict[str, float] = field(default_factory=dict)
    baseline: float = 0.0
    window_started: float = 0.0
    peak: int = 0
    quiet_until: float = 0.0


class AnomalyDetector:
    """Counts distinct subjects per client in a sliding window and reports who crosses the limit."""

    def __init__(
        self,
        *,
        window_s: float,
        threshold: int,
        baseline_factor: float = 0.0,
        max_clients: int = 10_000,
    ) -> None:
        self.window_s = window_s
        self.threshold = threshold
        self.baseline_factor = baseline_factor
        self.max_clients = max_clients
        self._clients: dict[str, _ClientWindow] = {}

    def limit_for(self, client_id: str) -> int:
        """How many distinct subjects per window ``client_id`` may read before it is reported."""
        state = self._clients.get(client_id)
        baseline = state.baseline if state else 0.0
        return max(self.threshold, int(self.baseline_factor * baseline))

    def observe(
        self, *, client_id: str, actor_org_id: str | None, subject_ref: str | None, now: float
    ) -> AnomalyFinding | None:
        """Count one access at ``now`` (seconds); a finding if the client just crossed its limit."""
        if subject_ref is None:
            return None
        state = self._clients.get(client_id)
        if state is None:
            if len(self._clients) >= self.max_clients:
                self._forget_idle(now)
            state = self._clients[client_id] = _ClientWindow(window_started=now)
        seen = state.last_read
        seen.pop(subject_ref, None)
        seen[subject_ref] = now
        horizon = now - self.window_s
        while seen:  # oldest first: stop at the first one still inside the window
            oldest = next(iter(seen))
            if seen[oldest] >= horizon:
                break
            del seen[oldest]
        count = len(seen)
        state.peak = max(state.peak, count)
        if now - state.window_started >= self.window_s:
            # A window ended: its peak joins the baseline, the limit follows the client's usual.
            state.baseline += _BASELINE_WEIGHT * (state.peak - state.baseline)
            state.window_started, state.peak = now, count
        limit = max(self.threshold, int(self.baseline_factor * state.baseline))
        if count > limit:
            while len(seen) > limit + 1:  # enough to know it is over; memory stays bounded
                del seen[next(iter(seen))]
            if now >= state.quiet_until:
                state.quiet_until = now + self.window_s
                return AnomalyFinding(
                    client_id=client_id,
                    actor_org_id=actor_org_id,
                    distinct_subjects=count,
                    window_s=self.window_s,
                    threshold=limit,
                    baseline=round(state.baseline, 2),
                )
        return None

    def withdraw(self, client_id: str) -> None:
        """Forget that ``client_id`` was reported in its window: the finding's event was not
        stored (its batch failed), so the next access over the limit reports it again."""
        state = self._clients.get(client_id)
        if state is not None:
            state.quiet_until = 0.0

    def _forget_idle(self, now: float) -> None:
        horizon = now - self.window_s
        for client_id, state in list(self._clients.items()):
            if not state.last_read or next(reversed(state.last_read.values())) < horizon:
                del self._clients[client_id]
