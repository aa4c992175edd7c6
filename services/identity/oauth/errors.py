"""OAuth 2.x protocol errors: the token, revocation, introspection and userinfo endpoints answer
``{"error", "error_description"}`` (RFC 6749 §5.2, RFC 6750 §3), not problem documents."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """An error the OAuth specifications name; ``status`` per RFC 6749 §5.2 unless set."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status or (401 if error == "invalid_client" else 400)
        self.headers = headers
        if error == "invalid_client" and headers is None:
            self.headers = {"WWW-Authenticate": 'Basic realm="pingtai"'}


def invalid_request(description: str) -> OAuthError:
    """A malformed request: a missing, repeated or unsupported parameter."""
    return OAuthError("invalid_request", description)


def invalid_client() -> OAuthError:
    """Client authentication failed; one message whatever the reason, so nothing is revealed."""
    return OAuthError("invalid_client", "Client authentication failed.")


def invalid_grant(description: str) -> OAuthError:
    """The code or refresh token is invalid, expired, revoked, used, or someone else's."""
    return OAuthError("invalid_grant", description)


def oauth_error_response(error: OAuthError) -> JSONResponse:
    """The JSON body and headers of an OAuth error."""
    return JSONResponse(
        {"error": error.error, "error_description": error.description},
        status_code=error.status,
        headers={**NO_STORE, **(error.headers or {})},
    )


async def on_oauth_error(request: Request, exc: Exception) -> JSONResponse:
    """The app's handler for an OAuthError that escapes an endpoint."""
    assert isinstance(exc, OAuthError)
    return oauth_error_response(exc)
