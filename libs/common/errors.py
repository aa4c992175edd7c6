"""RFC 9457 problem details: one error base for every part and one set of handlers."""

from __future__ import annotations

from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from libs.common.context import current_request_id

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://pingtai.dev/problems/"

log = structlog.get_logger("pingtai.errors")


class FieldError(BaseModel):
    """One bad field of a request."""

    loc: list[str | int] = Field(description="Where the bad value is, e.g. ['body', 'name'].")
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": f"{PROBLEM_BASE}not-found",
                "title": "Not Found",
                "status": 404,
                "detail": "No application 42.",
                "request_id": "6f1c1d4e5b2a4c0f9d7e8a1b2c3d4e5f",
            }
        },
    )

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class PingtaiError(Exception):
    """The base of every domain error; subclasses set ``status`` and ``code``."""

    status: int = 400
    code: str = "bad-request"
    title: str | None = None
    # Response headers the problem needs, e.g. WWW-Authenticate on a 401 (RFC 6750).
    headers: dict[str, str] | None = None

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        self.extra = extra


class NotFound(PingtaiError):
    status = 404
    code = "not-found"


class Conflict(PingtaiError):
    status = 409
    code = "conflict"


class Forbidden(PingtaiError):
    status = 403
    code = "forbidden"


class Unauthorized(PingtaiError):
    status = 401
    code = "unauthorized"


class InvalidInput(PingtaiError):
    """A request that is well-formed but breaks a domain rule, field by field (422)."""

    status = 422
    code = "validation-error"
    title = "Your request is not valid"

    def __init__(self, detail: str, *, errors: Sequence[FieldError]) -> None:
        super().__init__(detail)
        self.field_errors = list(errors)

    @classmethod
    def for_field(cls, field: str, message: str, *, location: str = "body") -> InvalidInput:
        """One bad field of the request ``location`` ("body", "query", "path")."""
        return cls(
            f"{field}: {message}",
            errors=[FieldError(loc=[location, field], msg=message, type="value_error")],
        )


class PayloadTooLarge(PingtaiError):
    status = 413
    code = "payload-too-large"


# How long a client should wait before trying again when we are overloaded.
OVERLOAD_RETRY_AFTER_S = 5


class ServiceUnavailable(PingtaiError):
    """Overloaded or a dependency down for now: the client may try again (503, Retry-After)."""

    status = 503
    code = "unavailable"
    headers = {"Retry-After": str(OVERLOAD_RETRY_AFTER_S)}


def problem_response(
    status: int,
    *,
    code: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Render a problem document with the request id of the current request."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": f"{PROBLEM_BASE}{code}" if code else "about:blank",
        "title": title or phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    if errors is not None:
        body["errors"] = [e.model_dump() for e in errors]
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    return [
        FieldError(
            loc=[p for p in e.get("loc", ()) if isinstance(p, str | int)],
            msg=str(e.get("msg", "")),
            type=str(e.get("type", "")),
        )
        for e in exc.errors()
    ]


# Names an extension member may not take: the standard members and problem_response's arguments.
_RESERVED_MEMBERS = frozenset(
    {"type", "title", "status", "detail", "instance", "request_id", "errors", "code", "headers"}
)


async def _on_pingtai_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PingtaiError)
    # A clashing extra (NotFound(..., status=...)) must not turn the problem into a 500.
    extra = {k: v for k, v in exc.extra.items() if k not in _RESERVED_MEMBERS}
    if len(extra) != len(exc.extra):
        log.warning("problem_extra_dropped", names=sorted(exc.extra.keys() - extra.keys()))
    return problem_response(
        exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        errors=exc.field_errors if isinstance(exc, InvalidInput) else None,
        **extra,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    return problem_response(
        422,
        code="validation-error",
        title="Your request is not valid",
        detail=f"{len(errors)} field(s) failed validation.",
        errors=errors,
    )


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not-found", 405: "method-not-allowed", 413: "payload-too-large"}
    detail: str | None = exc.detail if isinstance(exc.detail, str) else None
    if detail == HTTPStatus(exc.status_code).phrase:
        detail = None
    return problem_response(
        exc.status_code,
        code=codes.get(exc.status_code),
        detail=detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _on_integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A unique or foreign-key violation, often found only at commit: the request clashes with
    # what is stored, so it is the client's 409, not our 500. The SQL stays in our log.
    log.info("integrity_error", path=request.url.path, error=str(exc.__cause__ or exc))
    return problem_response(
        409,
        code="conflict",
        detail="The request conflicts with data already stored (a duplicate or a missing link).",
    )


# SQLite's "busy" and "locked" result codes; PostgreSQL's too_many_connections and
# cannot_connect_now (starting, stopping, recovering).
_SQLITE_BUSY_CODES = frozenset({5, 6})
_POSTGRES_UNAVAILABLE_STATES = frozenset({"53300", "57P03"})


def is_overload(exc: BaseException) -> bool:
    """Whether a database error means "too busy now, try again" rather than a fault: the
    connection pool timed out, SQLite's write lock (or this process's write queue) was not ours
    in time, or PostgreSQL refused a connection for now."""
    if isinstance(exc, PoolTimeoutError):
        return True
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    code = getattr(orig, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _SQLITE_BUSY_CODES:
        return True
    if str(orig).startswith(("database is locked", "database table is locked")):
        return True
    return getattr(orig, "sqlstate", None) in _POSTGRES_UNAVAILABLE_STATES


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_overload(exc):
        return await _on_unexpected_error(request, exc)
    # Not our fault nor the client's: a surge. Logged without a traceback, counted by status.
    log.warning(
        "database_overloaded", path=request.url.path, error=type(exc).__name__, detail=str(exc)
    )
    unavailable = ServiceUnavailable("We are busy right now; try again in a few seconds.")
    return await _on_pingtai_error(request, unavailable)


# PostgreSQL's character_not_in_repertoire (NUL: "invalid byte sequence for encoding UTF8: 0x00")
# and untranslatable_character.
_POSTGRES_UNSTORABLE_TEXT_STATES = frozenset({"22021", "22P05"})


def is_unstorable_text(exc: BaseException) -> bool:
    """Whether an error means the request carried text the database cannot hold: a NUL
    character (PostgreSQL refuses it in text) or a string without a UTF-8 form (a lone
    surrogate from a JSON escape such as ``"\\ud800"``, which no driver can encode: asyncpg
    wraps the UnicodeEncodeError in a DataError, SQLite's driver raises it as it is). The error
    may come wrapped by SQLAlchemy or, from a DBAPI cursor used directly, as the driver's own."""
    seen: BaseException | None = exc
    for _ in range(8):  # the driver's error wraps the UnicodeEncodeError a few levels down
        if seen is None:
            return False
        if getattr(seen, "sqlstate", None) in _POSTGRES_UNSTORABLE_TEXT_STATES:
            return True
        if isinstance(seen, UnicodeEncodeError) and seen.reason == "surrogates not allowed":
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


async def _on_driver_error(request: Request, exc: Exception) -> JSONResponse:
    if not is_unstorable_text(exc):
        return await _on_unexpected_error(request, exc)
    # A value from the client (a path id, a field, a header) no row can hold, so no row has it:
    # the client's 422, whatever part of the request it was in.
    log.info("unstorable_text", path=request.url.path, error=str(getattr(exc, "orig", exc)))
    return problem_response(
        422,
        code="unstorable-text",
        title="Your request is not valid",
        detail="The request holds a character we cannot store: NUL (U+0000) or a lone surrogate.",
    )


async def _on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", path=request.url.path, method=request.method)
    return problem_response(
        500,
        code="internal-error",
        detail="Something went wrong on our side. Quote the request id when you report it.",
    )


def _may_use_asyncpg(app: FastAPI) -> bool:
    """Whether ``app``'s database may be PostgreSQL through asyncpg (``app.state.settings``'
    ``database_url``; yes when there is none to read)."""
    url = getattr(getattr(app.state, "settings", None), "database_url", None)
    if not isinstance(url, str) or not url:
        return True
    try:
        return make_url(url).get_backend_name() == "postgresql"
    except ArgumentError:
        return True


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a problem document."""
    app.add_exception_handler(PingtaiError, _on_pingtai_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(IntegrityError, _on_integrity_error)
    app.add_exception_handler(OperationalError, _on_database_error)
    app.add_exception_handler(PoolTimeoutError, _on_database_error)
    # Text no database holds (NUL, lone surrogates), wrapped by SQLAlchemy, raised by SQLite's
    # driver as it is, or by asyncpg's DBAPI adapter to a cursor used directly (DirectRead).
    # Registered by class: an error no handler names reaches the middleware's last-resort 500.
    app.add_exception_handler(DBAPIError, _on_driver_error)
    app.add_exception_handler(UnicodeEncodeError, _on_driver_error)
    if _may_use_asyncpg(app):
        # Imported only then: on SQLite a part never loads PostgreSQL's dialect (≈ 2 MB).
        from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

        app.add_exception_handler(AsyncAdapt_asyncpg_dbapi.Error, _on_driver_error)
    app.add_exception_handler(Exception, _on_unexpected_error)


# Declared on routes so the OpenAPI documents list the error responses they may send.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "A body that cannot be read (not JSON, not UTF-8) or a cursor this list "
        "did not give out",
    },
    404: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "Nothing by this id (or nothing the caller may see)",
    },
    422: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "Validation error",
    },
    500: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "Unexpected error",
    },
    503: {
        "model": Problem,
        "content": {PROBLEM_CONTENT_TYPE: {}},
        "description": "Overloaded for now (the database is busy): try again after Retry-After",
        "headers": {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        },
    },
}
