"""Per-request context carried through a task: the request id."""

from __future__ import annotations

from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("pingtai_request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request being served, if any."""
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    """Set the request id for the current task; returns a token for ``reset_request_id``."""
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    """Restore the request id set before ``set_request_id``."""
    _request_id.reset(token)  # type: ignore[arg-type]
