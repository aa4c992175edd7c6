"""A part's JetStream stream, declared at start-up with the limits an operator set."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from libs.common.events.envelope import stream_name, stream_subjects
from libs.common.settings import PartSettings

# A per-subject limit no stream reaches (a subject is an event type; at 10,000 events/s of one
# type a week holds 6e9), set for the block size it buys: nats-server writes a stream without
# max_bytes, max_msgs or max_msgs_per_subject in 8 MB blocks, and one with only a per-subject limit
# in 4 MB blocks (its key-value size). The file store keeps the block being written in memory
# while consumers read each new event from it, so that block's size bounds how much a busy
# stream holds: with 8 MB blocks the embedded nats-server grew 29 -> 41 MB in the 10-minute soak
# as the workflow stream's block filled (docs/operations.md, "Memory on one machine").
# An encrypted store writes a stream with none of those limits in 2 MB blocks, but any of them
# sets the block's size (4 or 8 MB) past that cap: on such a store the limit is left out.
MAX_MSGS_PER_SUBJECT = 10**12


@dataclass(frozen=True)
class StreamLimits:
    """What a part's stream keeps: ``max_bytes=-1`` means no limit on size."""

    max_age_s: float = 7 * 24 * 3600
    max_bytes: int = -1
    replicas: int = 1
    file_storage: bool = True
    duplicate_window_s: float = 120.0
    store_encrypted: bool = False  # the server's JetStream store is encrypted at rest

    @classmethod
    def from_settings(cls, settings: PartSettings) -> StreamLimits:
        """The limits in a part's settings (``PINGTAI_<PART>_EVENTS_*``)."""
        return cls(
            max_age_s=settings.events_max_age_s,
            max_bytes=settings.events_max_bytes,
            replicas=settings.events_replicas,
            file_storage=settings.events_storage == "file",
            duplicate_window_s=settings.events_duplicate_window_s,
            store_encrypted=settings.nats_store_cipher != "none",
        )


def stream_config(*, part: str, limits: StreamLimits) -> StreamConfig:
    """The configuration of ``part``'s stream."""
    return StreamConfig(
        name=stream_name(part),
        description=f"Events published by the {part} part of Pingtai",
        subjects=stream_subjects(part),
        max_age=limits.max_age_s,
        max_bytes=limits.max_bytes,
        max_msgs_per_subject=-1 if limits.store_encrypted else MAX_MSGS_PER_SUBJECT,
        num_replicas=limits.replicas,
        storage=StorageType.FILE if limits.file_storage else StorageType.MEMORY,
        # The window must not outlast the stream's own retention.
        duplicate_window=min(limits.duplicate_window_s, limits.max_age_s),
        discard=DiscardPolicy.OLD,
    )


async def ensure_stream(js: Any, *, part: str, limits: StreamLimits) -> None:
    """Create ``part``'s stream, or bring an existing one to ``limits`` (idempotent)."""
    config = stream_config(part=part, limits=limits)
    try:
        await js.update_stream(config)
    except NotFoundError:
        await js.add_stream(config)
