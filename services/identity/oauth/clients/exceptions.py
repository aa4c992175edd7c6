"""Client registry errors."""

from __future__ import annotations

from libs.common.errors import Conflict, NotFound, PingtaiError


class ClientNotFound(NotFound):
    code = "client-not-found"


class ClientExists(Conflict):
    code = "client-exists"


class InvalidClientRegistration(PingtaiError):
    status = 422
    code = "invalid-client"


class ClientAuthenticationFailed(Exception):
    """The client is unknown, disabled, or its credentials are wrong (OAuth ``invalid_client``)."""
