"""The problems a request can meet at the door: no token, a bad token, too little authority."""

from __future__ import annotations

from libs.common.errors import Forbidden, PingtaiError, Unauthorized

# The protection space named in every Bearer challenge (RFC 6750 §3).
REALM = "pingtai"


def _quoted(value: str) -> str:
    # RFC 6750 §3: error_description and scope use printable ASCII without '"' and '\'.
    return "".join(c for c in value if " " <= c <= "~" and c not in '"\\')


def bearer_challenge(error: str | None = None, **params: str) -> str:
    """A ``WWW-Authenticate`` value: ``Bearer realm="pingtai", error="...", ...``."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    parts.extend(f'{name}="{_quoted(value)}"' for name, value in params.items())
    return "Bearer " + ", ".join(parts)


class AuthenticationRequired(Unauthorized):
    """The request carries no bearer token; RFC 6750 §3.1 gives no error code then."""

    code = "authentication-required"
    title = "Authentication required"

    def __init__(self, detail: str = "This endpoint needs an access token.") -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": bearer_challenge()}


class InvalidToken(Unauthorized):
    """The bearer token is malformed, expired, revoked, or not one of ours."""

    code = "invalid-token"
    title = "Invalid access token"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = {
            "WWW-Authenticate": bearer_challenge("invalid_token", error_description=detail)
        }


class InsufficientScope(Forbidden):
    """The token is valid but lacks a scope the endpoint needs (RFC 6750 §3.1)."""

    code = "insufficient-scope"
    title = "Insufficient scope"

    def __init__(self, scopes: frozenset[str]) -> None:
        needed = " ".join(sorted(scopes))
        super().__init__(f"This endpoint needs the scope(s): {needed}.")
        self.headers = {
            "WWW-Authenticate": bearer_challenge("insufficient_scope", scope=needed),
        }


class InsufficientAssurance(Unauthorized):
    """The person signed in at too low an assurance level: step up (RFC 9470)."""

    code = "insufficient-assurance"
    title = "Stronger sign-in needed"

    def __init__(self, level: int) -> None:
        super().__init__(
            f"This endpoint needs assurance level {level} or higher: sign in again at that level."
        )
        self.headers = {
            "WWW-Authenticate": bearer_challenge(
                "insufficient_user_authentication",
                error_description=f"assurance level {level} required",
                acr_values=str(level),
            )
        }


class TokenVerificationUnavailable(PingtaiError):
    """No signing key has ever been fetched, so no token can be verified yet."""

    status = 503
    code = "token-verification-unavailable"
    title = "Cannot verify access tokens right now"

    def __init__(self, retry_after_s: float) -> None:
        super().__init__("The platform's signing keys cannot be fetched; try again shortly.")
        self.headers = {"Retry-After": str(max(1, round(retry_after_s)))}
