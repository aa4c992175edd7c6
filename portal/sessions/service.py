"""Sessions: start and finish a sign-in, find the session of a request, keep its access token
fresh, sign out (here or everywhere)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth.principal import Principal
from libs.common.auth.verifier import TokenVerifier
from portal.auth.oidc import OidcClient, SignInFailed, TokenSet, new_verifier
from portal.sessions import repository
from portal.sessions.models import PendingSignIn, PortalSession
from portal.sessions.sealing import TokenSealer
from portal.settings import PortalSettings

# last_seen_at is written at most this often, so reading a page costs no write.
_TOUCH_EVERY = timedelta(seconds=60)


def _hash(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    """SQLite gives naive datetimes back; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class SessionKeeper:
    """What sessions need: settings, identity's endpoints, the access-token verifier, the sealer."""

    settings: PortalSettings
    oidc: OidcClient
    verifier: TokenVerifier
    sealer: TokenSealer

    def __post_init__(self) -> None:
        # One refresh at a time per session in this process (identity revokes a reused token).
        self._refreshing: dict[str, asyncio.Lock] = {}

    async def start_sign_in(
        self, session: AsyncSession, *, return_to: str, prompt: str | None
    ) -> tuple[str, str]:
        """A new pending sign-in: the browser cookie's value and identity's authorization URL."""
        cookie_value = secrets.token_urlsafe(32)
        verifier, challenge = new_verifier()
        pending = PendingSignIn(
            id=_hash(cookie_value),
            state=secrets.token_urlsafe(24),
            nonce=secrets.token_urlsafe(24),
            code_verifier=verifier,
            return_to=return_to,
            expires_at=_now() + timedelta(seconds=self.settings.sign_in_ttl_s),
        )
        session.add(pending)
        url = self.oidc.authorization_url(
            state=pending.state, nonce=pending.nonce, challenge=challenge, prompt=prompt
        )
        return cookie_value, url

    async def finish_sign_in(
        self, session: AsyncSession, *, cookie_value: str | None, state: str, code: str
    ) -> tuple[PortalSession, str, str]:
        """The new session, its cookie value and where to go, from identity's answer."""
        pending = await repository.take_pending(session, _hash(cookie_value or ""))
        if pending is None or _aware(pending.expires_at) <= _now():
            raise SignInFailed("no pending sign-in in this browser (or it expired)")
        if not secrets.compare_digest(pending.state, state):
            raise SignInFailed("state differs")
        tokens = await self.oidc.exchange_code(code=code, verifier=pending.code_verifier)
        if tokens.id_token is None:
            raise SignInFailed("no ID token")
        claims = await self.oidc.verify_id_token(tokens.id_token, nonce=pending.nonce)
        principal = await self.verifier.verify(tokens.access_token)
        if principal.sub != claims["sub"]:
            raise SignInFailed("access token and ID token name different people")
        info = await self.oidc.userinfo(tokens.access_token)
        cookie = secrets.token_urlsafe(32)
        now = _now()
        row = PortalSession(
            id=_hash(cookie),
            user_id=principal.sub,
            name=str(info.get("name") or claims.get("name") or ""),
            csrf_token=secrets.token_urlsafe(32),
            token_generation=0,
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=self.settings.session_ttl_s),
        )
        self._store_tokens(row, tokens, principal)
        row.id_token = self.sealer.seal(tokens.id_token, session_id=row.id)
        session.add(row)
        return row, cookie, pending.return_to

    def _store_tokens(self, row: PortalSession, tokens: TokenSet, principal: Principal) -> None:
        row.access_token = self.sealer.seal(tokens.access_token, session_id=row.id)
        if tokens.refresh_token is not None:
            row.refresh_token = self.sealer.seal(tokens.refresh_token, session_id=row.id)
        row.access_expires_at = _now() + timedelta(seconds=tokens.expires_in)
        row.roles = sorted(str(r) for r in principal.roles)
        row.org = principal.org
        row.acr = principal.acr

    async def load(self, session: AsyncSession, cookie_value: str | None) -> PortalSession | None:
        """The live session the cookie names, if any (expired or idle ones are dropped)."""
        if not cookie_value:
            return None
        row = await repository.get_session(session, _hash(cookie_value))
        if row is None:
            return None
        now = _now()
        idle_until = _aware(row.last_seen_at) + timedelta(seconds=self.settings.session_idle_s)
        if _aware(row.expires_at) <= now or idle_until <= now:
            await repository.delete_sessions(session, [row.id])
            return None
        if now - _aware(row.last_seen_at) >= _TOUCH_EVERY:
            row.last_seen_at = now
        return row

    async def access_token(self, session: AsyncSession, row: PortalSession) -> str | None:
        """A live access token of the session: refreshed when near its end; None when identity
        no longer gives one (the session is then dropped)."""
        margin = timedelta(seconds=self.settings.token_refresh_margin_s)
        if _aware(row.access_expires_at) - margin > _now():
            return self.sealer.open(row.access_token, session_id=row.id)
        lock = self._refreshing.setdefault(row.id, asyncio.Lock())
        async with lock:
            await session.refresh(row)
            if _aware(row.access_expires_at) - margin > _now():  # refreshed while we waited
                return self.sealer.open(row.access_token, session_id=row.id)
            if row.refresh_token is None:
                return None
            if not await repository.claim_refresh(session, row.id, row.token_generation):
                # Another replica is refreshing this session: use what it stores.
                await asyncio.sleep(0.5)
                await session.refresh(row)
                fresh = _aware(row.access_expires_at) > _now()
                return self.sealer.open(row.access_token, session_id=row.id) if fresh else None
            refresh_token = self.sealer.open(row.refresh_token, session_id=row.id)
            try:
                tokens = await self.oidc.refresh(refresh_token)
                principal = await self.verifier.verify(tokens.access_token)
            except SignInFailed:
                await repository.delete_sessions(session, [row.id])
                return None
            finally:
                self._refreshing.pop(row.id, None)
            self._store_tokens(row, tokens, principal)
            # Commit now: identity has rotated the refresh token; losing the new one would end
            # the session at the next refresh.
            await session.commit()
            return tokens.access_token

    def end_session_url(self, row: PortalSession) -> str | None:
        """Where to send the browser so identity signs the person out everywhere (its
        end-session endpoint, with the sign-in's ID token as the hint); None without one."""
        if row.id_token is None:
            return None
        hint = self.sealer.open(row.id_token, session_id=row.id)
        return self.oidc.end_session_url(id_token_hint=hint)

    async def sign_out(self, session: AsyncSession, row: PortalSession, *, everywhere: bool) -> int:
        """Revoke the refresh tokens at identity and drop the session(s); how many went."""
        rows = await repository.sessions_of(session, row.user_id) if everywhere else [row]
        for each in rows:
            if each.refresh_token is not None:
                await self.oidc.revoke(self.sealer.open(each.refresh_token, session_id=each.id))
        await repository.delete_sessions(session, [each.id for each in rows])
        return len(rows)
