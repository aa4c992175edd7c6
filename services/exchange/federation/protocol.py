"""The federation protocol (X-Road style) between the exchange and a department's endpoint.

A federated dataset's records stay in the department's system. The exchange forwards a query
as a signed ``POST`` to the endpoint the catalogue registered; the department answers with a
signed response. Both directions carry:

- ``Content-Digest`` (RFC 9530, ``sha-256``) of the body;
- ``X-Road-Id``: the message id, new and random for every forwarded query (never the caller's
  ``X-Request-ID``, which a caller chooses and may repeat; that one travels in ``X-Request-ID``
  for tracing only), the same in the answer;
- an RFC 9421 HTTP Message Signature (``Signature-Input`` / ``Signature``), algorithm
  ``hmac-sha256`` with the secret the platform shares with the owner department, ``keyid`` its
  organisation id, ``created`` and ``expires`` set, and a ``tag`` naming the direction;
- the request also ``X-Road-Client`` (the consuming client's id); the answer also
  ``X-Road-Request-Hash``: the ``sha-256`` of the request's ``Signature`` field
  (``request_hash``). The request's signature covers its ``X-Road-Id``, digest, client, target
  and creation time, so an answer binds to exactly one request: one recorded for another request
  (even one with the same body) is refused.

Replays of requests: ``verify_request`` refuses a request whose ``X-Road-Id`` it has seen within
``REPLAY_WINDOW`` (``SeenRequestIds``, this process's unless given another); anything older
fails the signature's age check anyway.

The signing and verifying are the ``http-message-signatures`` library's, the hashes
``hashlib``'s; this module only fixes which components are covered. A department whose system
is in Python can use ``verify_request``, ``request_hash`` and ``sign_response`` as they are
(docs/exchange.md, "Federation: replay protection").
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, MutableMapping
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
TRACE_HEADER = "X-Request-ID"
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
# How long a department remembers a request id: the signature's lifetime and the clock skew
# the verifier allows (HTTPMessageVerifier.max_clock_skew); an older request fails its age check.
REPLAY_WINDOW = SIGNATURE_LIFETIME + HTTPMessageVerifier.max_clock_skew


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


class ReplayedRequest(InvalidSignature):
    """A request whose ``X-Road-Id`` was seen already within the replay window."""


class SeenRequestIds:
    """The request ids a department's endpoint accepted within ``window``: a repeated one is
    refused. In memory, for one process; a department running several keeps them in a store
    they share (any object with this ``remember`` will do)."""

    def __init__(
        self,
        *,
        window: timedelta = REPLAY_WINDOW,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 250_000,
    ) -> None:
        self.window_s = window.total_seconds()
        self.clock = clock
        self.max_entries = max_entries
        self._seen: set[tuple[str, str]] = set()
        self._expiry: deque[tuple[float, tuple[str, str]]] = deque()  # oldest first
        self._lock = threading.Lock()

    def remember(self, key_id: str, request_id: str) -> None:
        """Note ``request_id`` of ``key_id``; ``ReplayedRequest`` if it was seen in the window."""
        now = self.clock()
        with self._lock:
            expiry = self._expiry
            while expiry and expiry[0][0] <= now:
                self._seen.discard(expiry.popleft()[1])
            key = (key_id, request_id)
            if key in self._seen:
                raise ReplayedRequest(f"request id {request_id!r} was used already")
            if len(self._seen) >= self.max_entries:
                # Refused rather than forgotten: forgetting would let a replay through.
                raise ReplayedRequest("too many requests within the replay window")
            self._seen.add(key)
            expiry.append((now + self.window_s, key))


class RequestIdMemory(Protocol):
    """Where a department's endpoint remembers the request ids it accepted."""

    def remember(self, key_id: str, request_id: str) -> None: ...


# The request ids this process accepted, when ``verify_request`` is not given a memory of its
# own: replay protection is on unless a department chooses another memory.
PROCESS_REQUEST_IDS = SeenRequestIds()


def verify_request(
    method: str,
    url: str,
    headers: Headers,
    body: bytes,
    *,
    key_id: str,
    secret: bytes,
    seen: RequestIdMemory = PROCESS_REQUEST_IDS,
) -> None:
    """Check a forwarded request's digest and signature and that its ``X-Road-Id`` is new to
    ``seen`` (this process's memory unless given another); ``InvalidSignature``
    (``ReplayedRequest``) if they fail."""
    message = RequestMessage(method=method, url=url, headers=headers)
    _verify(
        message,
        key_id=key_id,
        secret=secret,
        body=body,
        tag=REQUEST_TAG,
        covered=REQUEST_COMPONENTS,
    )
    # Only after the signature holds: an unsigned request cannot use up an id.
    seen.remember(key_id, _field(headers, ID_HEADER))


def _field(headers: Headers, name: str) -> str:
    wanted = name.lower()
    values = [value for key, value in headers.items() if key.lower() == wanted]
    if len(values) != 1:
        raise InvalidSignature(f"the request needs exactly one {name} field")
    return values[0]


def request_hash(headers: Headers) -> str:
    """The ``X-Road-Request-Hash`` an answer to the request with ``headers`` carries: the
    ``sha-256`` of its ``Signature`` field, in ``Content-Digest``'s form."""
    digest = hashlib.sha256(_field(headers, "Signature").encode()).digest()
    return f"sha-256=:{base64.b64encode(digest).decode()}:"


def sign_response(
    *,
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    key_id: str,
    secret: bytes,
) -> dict[str, str]:
    """The headers of a signed answer: ``headers`` plus Content-Digest and the signature.

    ``headers`` must hold ``Content-Type``, ``X-Road-Id`` (the request's) and
    ``X-Road-Request-Hash`` (``request_hash`` of the request's headers).
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
