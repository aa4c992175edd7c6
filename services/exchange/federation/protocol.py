"""The federation protocol (X-Road style) between the exchange and a department's endpoint.

A federated dataset's records stay in the department's system. The exchange forwards a query
as a signed ``POST`` to the endpoint the catalogue registered; the department answers with a
signed response. Both directions carry:

- ``Content-Digest`` (RFC 9530, ``sha-256``) of the body;
- ``X-Road-Id``: the request id, the same in the answer;
- an RFC 9421 HTTP Message Signature (``Signature-Input`` / ``Signature``), algorithm
  ``hmac-sha256`` with the secret the platform shares with the owner department, ``keyid`` its
  organisation id, ``created`` and ``expires`` set, and a ``tag`` naming the direction;
- the request also ``X-Road-Client`` (the consuming client's id); the answer also
  ``X-Road-Request-Hash``: the request's ``Content-Digest``, so an answer cannot be replayed for
  another question.

The signing and verifying are the ``http-message-signatures`` library's; this module only fixes
which components are covered. A department whose system is in Python can use
``verify_request`` and ``sign_response`` as they are (docs/exchange-data.md shows one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)

CLIENT_HEADER = "X-Road-Client"
ID_HEADER = "X-Road-Id"
REQUEST_HASH_HEADER = "X-Road-Request-Hash"
REQUEST_TAG = "pingtai-federation-request"
RESPONSE_TAG = "pingtai-federation-response"
REQUEST_COMPONENTS = (
    "@method",
    "@target-uri",
    "content-type",
    "content-digest",
    "x-road-client",
    "x-road-id",
)
RESPONSE_COMPONENTS = (
    "@status",
    "content-type",
    "content-digest",
    "x-road-id",
    "x-road-request-hash",
)
# A signature is good for this long after it was made (clocks may differ by 5 s more).
SIGNATURE_LIFETIME = timedelta(minutes=2)
ALGORITHM = algorithms.HMAC_SHA256


class Headers(Protocol):
    """Header fields as the library reads them: every field line, in order."""

    def items(self) -> Iterable[tuple[str, str]]: ...
    def __iter__(self) -> Any: ...
    def __contains__(self, name: object) -> bool: ...


@dataclass
class RequestMessage:
    """A request as the signer sees it."""

    method: str
    url: str
    headers: Any


@dataclass
class ResponseMessage:
    """A response as the signer sees it (no request components are covered)."""

    status_code: int
    headers: MutableMapping[str, str] = field(default_factory=dict)
    request: None = None


def _resolver(key_id: str, secret: bytes) -> MappingKeyResolver:
    return MappingKeyResolver(public_keys={key_id: secret}, private_keys={key_id: secret})


def _sign(message: Any, *, key_id: str, secret: bytes, body: bytes, tag: str, covered: Any) -> None:
    now = datetime.now(UTC)
    HTTPMessageSigner(signature_algorithm=ALGORITHM, key_resolver=_resolver(key_id, secret)).sign(
        message,
        key_id=key_id,
        created=now,
        expires=now + SIGNATURE_LIFETIME,
        tag=tag,
        covered_component_ids=covered,
        body=body,
    )


def _verify(
    message: Any, *, key_id: str, secret: bytes, body: bytes, tag: str, covered: Any
) -> None:
    verifier = HTTPMessageVerifier(
        signature_algorithm=ALGORITHM, key_resolver=_resolver(key_id, secret)
    )
    results = verifier.verify(
        message,
        max_age=SIGNATURE_LIFETIME,
        expect_tag=tag,
        require_components=covered,
        body=body,
    )
    if any(result.parameters.get("keyid") != key_id for result in results):
        raise InvalidSignature("the signature names another key")


def sign_request(request: RequestMessage | Any, *, key_id: str, secret: bytes, body: bytes) -> None:
    """Add Content-Digest and the signature to a request (an ``httpx.Request`` will do)."""
    _sign(
        request,
        key_id=key_id,
        secret=secret,
        body=body,
        tag=REQUEST_TAG,
        covered=REQUEST_COMPONENTS,
    )


def verify_request(
    method: str, url: str, headers: Headers, body: bytes, *, key_id: str, secret: bytes
) -> None:
    """Check a forwarded request's digest and signature; ``InvalidSignature`` if they fail."""
    message = RequestMessage(method=method, url=url, headers=headers)
    _verify(
        message,
        key_id=key_id,
        secret=secret,
        body=body,
        tag=REQUEST_TAG,
        covered=REQUEST_COMPONENTS,
    )


def sign_response(
    *,
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    key_id: str,
    secret: bytes,
) -> dict[str, str]:
    """The headers of a signed answer: ``headers`` plus Content-Digest and the signature.

    ``headers`` must hold ``Content-Type``, ``X-Road-Id`` and ``X-Road-Request-Hash``.
    """
    message = ResponseMessage(status_code=status_code, headers=dict(headers))
    _sign(
        message,
        key_id=key_id,
        secret=secret,
        body=body,
        tag=RESPONSE_TAG,
        covered=RESPONSE_COMPONENTS,
    )
    return dict(message.headers)


def verify_response(
    status_code: int, headers: Headers, body: bytes, *, key_id: str, secret: bytes
) -> None:
    """Check an answer's digest and signature; ``InvalidSignature`` if they fail."""
    message = ResponseMessage(status_code=status_code, headers=headers)  # type: ignore[arg-type]
    _verify(
        message,
        key_id=key_id,
        secret=secret,
        body=body,
        tag=RESPONSE_TAG,
        covered=RESPONSE_COMPONENTS,
    )
