"""Log lines as deployed: JSON on stdout, one access line per request, with trace and request id."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import structlog
from fastapi import APIRouter
from opentelemetry import context as otel_context
from opentelemetry import propagate

from libs.common.telemetry import configure_logging
from tests.common.conftest import build_app


@pytest.fixture
def stdout_lines(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Logging configured as a part's process does, writing to a buffer; restored after."""
    buffer = io.StringIO()
    monkeypatch.setattr("sys.stdout", buffer)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging(part="sample", level="INFO")
    # The middleware's module-level access logger caches its first binding, so after an earlier
    # test's request it still writes to the stdout of that test (in a part's process the
    # configuration happens once, before any request): a fresh one for this configuration.
    monkeypatch.setattr("libs.common.middleware.access_log", structlog.get_logger("pingtai.access"))
    # Module-level loggers (the access log's) must not keep this configuration after the test.
    structlog.configure(cache_logger_on_first_use=False)
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        root.handlers[:] = handlers
        root.setLevel(level)


def _lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines() if line]


async def test_one_json_access_line_per_request_with_its_ids(
    stdout_lines: io.StringIO, tmp_path: Path
) -> None:
    router = APIRouter(prefix="/v1")

    @router.get("/things/{thing}")
    async def thing(thing: str) -> dict[str, str]:
        structlog.get_logger("pingtai.sample").warning("looked_up", thing=thing)
        return {"thing": thing}

    app = build_app(routers=[router], database_url=f"sqlite+aiosqlite:///{tmp_path}/log.db")
    caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app), base_url="http://sample"
    ) as client:
        response = await client.get(
            "/v1/things/seven",
            headers={
                "X-Request-ID": "req-1",
                "traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01",
            },
        )
        await client.get("/healthz")  # probes log at DEBUG: no line at INFO
    assert response.status_code == 200
    looked_up, access = _lines(stdout_lines)
    assert looked_up["event"] == "looked_up"
    assert looked_up["level"] == "warning"
    assert looked_up["logger"] == "pingtai.sample"
    assert access == {
        "method": "GET",
        "path": "/v1/things/seven",
        "route": "/v1/things/{thing}",
        "status": 200,
        "duration_ms": access["duration_ms"],
        "client": "127.0.0.1",
        "event": "request",
        "part": "sample",
        "level": "info",
        "logger": "pingtai.access",
        "timestamp": access["timestamp"],
        "trace_id": caller_trace,
        "span_id": access["span_id"],
        "request_id": "req-1",
    }
    assert access["span_id"] != "00f067aa0ba902b7"  # this request's own span
    assert looked_up["trace_id"] == caller_trace
    assert looked_up["span_id"] == access["span_id"]


def test_standard_library_loggers_keep_their_levels_and_render_the_same_way(
    stdout_lines: io.StringIO,
) -> None:
    logging.getLogger("quiet.part").setLevel(logging.ERROR)
    try:
        structlog.get_logger("quiet.part").warning("dropped")
        logging.getLogger("uvicorn.error").warning("started %s", "server")
        try:
            raise ValueError("boom")
        except ValueError:
            structlog.get_logger("pingtai.sample").exception("failed")
    finally:
        logging.getLogger("quiet.part").setLevel(logging.NOTSET)
    started, failed = _lines(stdout_lines)
    assert started["event"] == "started server"
    assert started["logger"] == "uvicorn.error"
    assert started["part"] == "sample"
    assert failed["level"] == "error"
    assert "ValueError: boom" in str(failed["exception"])


async def test_the_direct_access_line_is_the_line_the_processor_chain_writes(
    stdout_lines: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``info`` and ``debug`` render the configured JSON chain's line directly: the same fields,
    in the same order, as the same JSON text (only the time differs)."""
    from libs.common import telemetry

    log = structlog.get_logger("pingtai.access").bind(bound="yes")
    fields = {"method": "GET", "status": 200, "duration_ms": 1.5, "odd": Path("/x")}
    token = otel_context.attach(
        propagate.extract(
            {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
        )
    )
    # The configured chain is the one rendered directly: the first line is the direct one.
    assert telemetry._direct_chain == tuple(structlog.get_config()["processors"])
    try:
        log.info("request", **fields)
        monkeypatch.setattr(telemetry, "_direct_chain", ())  # as if another chain: the chain
        log.info("request", **fields)
    finally:
        otel_context.detach(token)
    direct, chained = stdout_lines.getvalue().splitlines()
    stamp = re.compile(r'"timestamp": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"')
    assert stamp.search(direct) and stamp.search(chained)
    assert stamp.sub("", direct) == stamp.sub("", chained)
    assert json.loads(direct)["odd"] == "PosixPath('/x')"
    assert json.loads(direct)["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert list(json.loads(direct))[:6] == [
        "bound",
        "method",
        "status",
        "duration_ms",
        "odd",
        "event",
    ]


def test_the_direct_line_drops_what_the_level_drops(stdout_lines: io.StringIO) -> None:
    structlog.get_logger("pingtai.access").debug("request", path="/healthz")
    logging.getLogger("pingtai.loud").setLevel(logging.DEBUG)
    try:
        structlog.get_logger("pingtai.loud").debug("request", path="/healthz")
    finally:
        logging.getLogger("pingtai.loud").setLevel(logging.NOTSET)
    (line,) = _lines(stdout_lines)
    assert (line["logger"], line["level"]) == ("pingtai.loud", "debug")


@pytest.mark.parametrize(
    "ns",
    [
        1_795_874_400_000_000_000,  # on the second: no fraction, as isoformat writes it
        1_795_874_400_000_001_999,  # one microsecond (nanoseconds truncated)
        1_795_874_400_999_999_000,
        1_795_874_401_123_456_789,  # the next second
    ],
)
def test_timestamps_read_as_structlogs_iso_stamp(ns: int) -> None:
    from libs.common.telemetry import _Timestamps

    stamps = _Timestamps()
    moment = datetime.fromtimestamp(ns // 10**9, UTC).replace(microsecond=ns // 1000 % 10**6)
    expected = moment.isoformat().replace("+00:00", "Z")
    assert stamps.format(ns - 1_000_000_000) != expected  # a second earlier, cached
    assert stamps.format(ns) == expected
