"""Registered clients kept in memory for a few seconds, so a token grant needs no query.

A change made through this process (update, disable, secret rotation, bootstrap) forgets the
client at once and again when its transaction commits. Other replicas keep their copy until it
is ``ttl_s`` old: a disabled client or a rotated secret may still work there for that long.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from services.identity.oauth.clients.models import OAuthClient

# Set on a session that changed clients; its commit forgets them once more.
_CHANGED = "pingtai_identity_clients_changed"
MAX_CLIENTS = 10_000


class ClientCache:
    """Detached client rows by id, each for ``ttl_s`` seconds at most."""

    def __init__(self, *, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[str, tuple[float, OAuthClient]] = {}

    def get(self, client_id: str) -> OAuthClient | None:
        """The cached client, unless it is missing or too old."""
        entry = self._entries.get(client_id)
        if entry is None:
            return None
        if time.monotonic() - entry[0] >= self.ttl_s:
            self._entries.pop(client_id, None)
            return None
        return entry[1]

    def put(self, client: OAuthClient, *, loaded_at: float) -> None:
        """Keep a copy of ``client`` (read from the database at ``loaded_at``, monotonic time).

        The copy belongs to no session, so no request can flush a change made to it.
        """
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= MAX_CLIENTS:
            self._entries.clear()
        self._entries[client.client_id] = (loaded_at, _detached_copy(client))

    def forget(self, client_id: str) -> None:
        """Drop one client."""
        self._entries.pop(client_id, None)

    def clear(self) -> None:
        """Drop every client."""
        self._entries.clear()


# One cache per database this process serves, each entry at most this old.
_caches: dict[str, ClientCache] = {}
DEFAULT_TTL_S = 5.0


def _url_of(session: Any) -> str:
    bind = session.get_bind()
    return str(bind.url)


def cache_for(session: Any) -> ClientCache:
    """The cache of the database ``session`` (async or sync) talks to."""
    key = _url_of(session)
    cache = _caches.get(key)
    if cache is None:
        cache = _caches[key] = ClientCache(ttl_s=DEFAULT_TTL_S)
    return cache


def configure(*, url: str, ttl_s: float) -> None:
    """Start the cache of the database at ``url`` afresh with entries at most ``ttl_s`` old."""
    _caches[url] = ClientCache(ttl_s=ttl_s)


def _detached_copy(client: OAuthClient) -> OAuthClient:
    values = {}
    for attribute in inspect(OAuthClient).column_attrs:
        value = getattr(client, attribute.key)
        values[attribute.key] = list(value) if isinstance(value, list) else value
    return OAuthClient(**values)


def changed_in(session: Any, client_id: str) -> bool:
    """Whether ``session`` changed ``client_id`` and has not committed yet."""
    sync_session = getattr(session, "sync_session", session)
    return client_id in sync_session.info.get(_CHANGED, ())


def forget_on_commit(session: Any, client_id: str) -> None:
    """Forget ``client_id`` now and once more when ``session`` (async or sync) commits."""
    cache_for(session).forget(client_id)
    sync_session = getattr(session, "sync_session", session)
    sync_session.info.setdefault(_CHANGED, set()).add(client_id)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    changed = session.info.pop(_CHANGED, ())
    if changed:
        cache = cache_for(session)
        for client_id in changed:
            cache.forget(client_id)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)
