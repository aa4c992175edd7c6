"""The single-record fetch (``GET /v1/datasets/{id}/records/{subject_key}``), the exchange's
hottest request, served below FastAPI's dependency and validation layers.

FastAPI resolved the caller's dependency chain, validated five parameters one by one, matched
the path through every included router and serialised a response model: together more CPU
than the rules, the read and the ledger append. Here one plain handler does what those did —
the caller's token (``libs.common.auth.authenticate``, the same check as ``CurrentPrincipal``),
the parameters (one pydantic adapter built from the same declarations the OpenAPI document
shows, errors in FastAPI's shape) — then ``queries.query`` decides, reads, masks and records
exactly as for any query, and the answer is written as JSON bytes.

It is served twice over, by one handler: ``record_fetch_route()`` is a Starlette route the app
answers inside its own middleware (``libs.common.middleware.FrontRoutes``: matched by one
regular expression, before FastAPI's exception layer and router), and ``FetchRoute`` makes the
documented FastAPI operation (``access/router.py``) answer with the same handler wherever the
router is mounted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, NotRequired
from urllib.parse import unquote

from fastapi import Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response
from starlette.routing import Route
from typing_extensions import TypedDict

from libs.common.auth.dependencies import authenticate
from services.exchange.access import queries as queries_service
from services.exchange.access.dependencies import query_services
from services.exchange.access.schemas import ID_PATTERN

PATH = "/datasets/{dataset_id}/records/{subject_key}"

# The parameters as documented (access/router.py uses these in the operation's signature) and
# as checked here: one declaration each.
DatasetIdPath = Annotated[str, Path(pattern=ID_PATTERN)]
SubjectKeyPath = Annotated[str, Path(min_length=1, max_length=64)]
PurposeQuery = Annotated[
    str, Query(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f]+$", description="Why.")
]
FieldsQuery = Annotated[
    str | None,
    Query(
        max_length=4000,
        pattern=r"^[a-z][a-z0-9_]*(,[a-z][a-z0-9_]*)*$",
        description="Comma-separated: narrows the answer to these granted fields.",
    ),
]
BasisQuery = Annotated[
    str | None,
    Query(max_length=300, description="application:<id>, consent:<id> or statute:<ref>."),
]


class _Parameters(TypedDict):
    dataset_id: DatasetIdPath
    subject_key: SubjectKeyPath
    purpose: PurposeQuery
    fields: NotRequired[FieldsQuery]
    basis: NotRequired[BasisQuery]


_PARAMETERS = TypeAdapter(_Parameters)
# json.dumps with these options builds an encoder per call; the same one, built once.
_encode_answer = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_IN_PATH = frozenset({"dataset_id", "subject_key"})
_QUERY_NAMES = ("purpose", "fields", "basis")


def _query_values(query_string: bytes) -> dict[str, str]:
    """The query's parameters, the last value of each: what Starlette's ``QueryParams`` (and
    so FastAPI) would give (``parse_qsl`` of the Latin-1 text, blank values kept), without
    building the multi-dict."""
    values: dict[str, str] = {}
    for pair in query_string.decode("latin-1").split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in name or "+" in name:
            name = unquote(name.replace("+", " "))
        if "%" in value or "+" in value:
            value = unquote(value.replace("+", " "))
        values[name] = value
    return values


def _parameters(request: Request) -> _Parameters:
    """The path and query parameters, checked as FastAPI would (a 422 in the same shape)."""
    query = _query_values(request.scope["query_string"])
    given: dict[str, Any] = dict(request.path_params)
    for name in _QUERY_NAMES:
        value = query.get(name)
        if value is not None:
            given[name] = value
    try:
        return _PARAMETERS.validate_python(given)
    except ValidationError as error:
        raise RequestValidationError(
            [
                {**e, "loc": ("path" if e["loc"][0] in _IN_PATH else "query", *e["loc"])}
                for e in error.errors(include_url=False)
            ]
        ) from None


async def read_record(request: Request) -> Response:
    """Decide, read, mask and record one subject's record; the answer as JSON bytes."""
    principal = await authenticate(request)
    parameters = _parameters(request)
    headers = request.headers
    fields = parameters.get("fields")
    answer = await queries_service.query(
        services=query_services(request.app),
        principal=principal,
        dataset_id=parameters["dataset_id"],
        subjects=[
            queries_service.SubjectQuery(
                parameters["subject_key"],
                parameters.get("basis"),
                loc=("path", "subject_key"),
                basis_loc=("query", "basis"),
            )
        ],
        purpose=parameters["purpose"],
        fields=list(dict.fromkeys(fields.split(","))) if fields else None,
        on_behalf_of=headers.get(queries_service.ON_BEHALF_OF_HEADER),
        applicant=queries_service.applicant_of(
            principal,
            headers.get(queries_service.APPLICANT_HEADER),
            headers.get(queries_service.APPLICANT_ORG_HEADER),
        ),
    )
    outcome = answer.outcomes[0]
    if outcome.outcome == "refused":
        raise queries_service.refused_single(outcome)
    # RecordAnswer's fields, in its order, as pydantic would write them.
    body = _encode_answer(
        {
            "dataset_id": answer.dataset_id,
            "subject_key": outcome.subject_key,
            "found": outcome.outcome == "read",
            "record": outcome.record,
            "fields": answer.fields,
            "masked_fields": outcome.masked_fields,
            "ledger_position": outcome.ledger_position,
        }
    ).encode()
    return Response(body, media_type="application/json")


class FetchRoute(APIRoute):
    """The documented operation, answered by ``read_record`` (its endpoint only documents)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        return read_record


def record_fetch_route(prefix: str = "/v1") -> Route:
    """The fetch as a front route (``create_service_app(front_routes=...)``)."""
    return Route(
        prefix + PATH, read_record, methods=["GET"], name="read_record", include_in_schema=False
    )
