"""A part started without a span exporter (nor a sampler) never imports OpenTelemetry's SDK or its
instrumentations, and what users see stays: the trace continued, log lines with its ids,
``traceparent`` on outgoing httpx requests and on events (``libs.common.telemetry``)."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.propagate import extract

from libs.common import telemetry, telemetry_sdk

ROOT = Path(__file__).resolve().parents[2]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
# A client span of its own in the current trace, recording nothing (flags 00), as OpenTelemetry's
# httpx instrumentation sent it while nothing processed its spans.
CLIENT_TRACEPARENT = re.compile(rf"00-{TRACE}-(?!{SPAN})[0-9a-f]{{16}}-00")

# A local HTTP server recording the traceparent of each request to ``url`` in ``seen``.
RECORDER = """
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

seen = []
class Recorder(BaseHTTPRequestHandler):
    def do_GET(self):
        seen.append(self.headers.get("traceparent"))
        self.send_response(204)
        self.end_headers()
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}/hook"
"""

# Every part built as its process builds it (create_app, configure_process on), then: an
# outgoing httpx request of each kind inside a trace, an event's trace headers, a consumer's
# span, and a request into a part carrying a traceparent (its access line on stdout).
PART_PROCESS = f"""
import asyncio, importlib, json, os, sys

import httpx
from opentelemetry import context as otel_context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from libs.common.events.consumers import tracer as consumer_tracer
from libs.common.events.envelope import trace_context, trace_headers
from pingtai.parts import PARTS

apps = {{}}
for part in PARTS:
    os.environ[part.env_prefix + "DATABASE_URL"] = f"sqlite+aiosqlite:///{{part.name}}.db"
    apps[part.name] = importlib.import_module(part.package + ".app").create_app(part.settings())

{RECORDER}
async def async_call():
    async with httpx.AsyncClient() as client:
        await client.get(url)

span = SpanContext(0x{TRACE}, 0x{SPAN}, is_remote=False, trace_flags=TraceFlags(1))
token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(span)))
with httpx.Client() as client:
    client.get(url)
asyncio.run(async_call())
event_headers = trace_headers()
otel_context.detach(token)
server.shutdown()

def consumer_span(headers):
    with consumer_tracer.start_as_current_span("x process", context=trace_context(headers)) as s:
        c = s.get_span_context()
        return [format(c.trace_id, "032x"), format(c.span_id, "016x"), c.is_valid]

async def into_catalog():
    transport = httpx.ASGITransport(apps["catalog"])
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
        response = await client.get(
            "/openapi.json", headers={{"traceparent": "00-{TRACE}-{SPAN}-01"}}
        )
        return response.status_code

status = asyncio.run(into_catalog())
otel = sorted(
    m for m in sys.modules
    if m.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation"))
)
with open(sys.argv[1], "w") as out:
    json.dump({{
        "otel": otel,
        "httpx": seen,
        "events": event_headers,
        "consumer": consumer_span({{"traceparent": "00-{TRACE}-{SPAN}-01"}}),
        "consumer_alone": consumer_span(None),
        "catalog_status": status,
    }}, out)
"""


def _run(code: str, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``code`` in a new interpreter, with ``env`` over this one's without its OTEL_* settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def part_process(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the script saw, and the JSON lines it logged, in a process without OTEL_* settings."""
    folder = tmp_path_factory.mktemp("parts")
    result = folder / "result.json"
    done = _run(PART_PROCESS, str(result), cwd=folder, env={})
    seen: dict[str, Any] = json.loads(result.read_text())
    seen["log"] = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return seen


def test_no_part_imports_the_sdk_or_an_instrumentation(part_process: dict[str, Any]) -> None:
    assert part_process["otel"] == []


def test_outgoing_httpx_requests_carry_the_current_trace(part_process: dict[str, Any]) -> None:
    # httpx.Client, then httpx.AsyncClient: clients made anywhere, not only service_client.
    assert len(part_process["httpx"]) == 2
    for traceparent in part_process["httpx"]:
        assert CLIENT_TRACEPARENT.fullmatch(traceparent or ""), traceparent


def test_events_and_consumers_keep_the_trace(part_process: dict[str, Any]) -> None:
    assert part_process["events"] == {"traceparent": f"00-{TRACE}-{SPAN}-01"}
    trace_id, span_id, valid = part_process["consumer"]
    assert (trace_id, valid) == (TRACE, True)
    assert span_id != SPAN  # the consumer's span, a child of the publisher's
    trace_id, _, valid = part_process["consumer_alone"]
    assert valid and trace_id != TRACE  # an event without trace headers starts a trace


def test_a_request_continues_the_callers_trace_in_the_logs(part_process: dict[str, Any]) -> None:
    assert part_process["catalog_status"] == 200
    access = [line for line in part_process["log"] if line.get("path") == "/openapi.json"]
    assert len(access) == 1, part_process["log"][-5:]
    assert access[0]["trace_id"] == TRACE
    assert re.fullmatch(r"[0-9a-f]{16}", access[0]["span_id"])
    assert access[0]["span_id"] != SPAN


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"traceparent": f"00-{TRACE}-{SPAN}-01"},
        {"traceparent": f"00-{TRACE}-{SPAN}-00"},
        {"traceparent": f"00-{TRACE}-{SPAN}-01", "tracestate": "vendor=1"},
        {"traceparent": f"00-{TRACE}-{SPAN}-01", "baggage": "user=alice"},
        {"traceparent": "garbage"},
        {"baggage": "user=alice"},
        {"traceparent": f"00-{TRACE}-{SPAN}-03"},  # a random trace id: the bit is kept
    ],
)
def test_the_context_tracer_starts_the_spans_the_sdk_started(
    headers: dict[str, str] | None,
) -> None:
    """Without a processor the SDK's spans recorded nothing; the context tracer's carry the same
    ids, flags and state (same seed, same ids), for a parent from headers or none."""
    sdk = telemetry_sdk.tracer_provider("pingtai-test", exporting=False).get_tracer("t")
    ours = telemetry._ContextTracerProvider().get_tracer("t")
    context = extract(headers) if headers is not None else None
    started = []
    state = random.getstate()
    try:
        for tracer in (sdk, ours):
            random.seed(11)
            with tracer.start_as_current_span("x", context=context) as span:
                current = trace.get_current_span()
                c = span.get_span_context()
                started.append(
                    (c.trace_id, c.span_id, c.is_remote, c.trace_flags, c.trace_state.to_header())
                )
                assert not span.is_recording()
                assert current is span
    finally:
        random.setstate(state)
    assert started[0] == started[1]


@pytest.mark.parametrize(
    "setting",
    ["OTEL_TRACES_SAMPLER=parentbased_always_on", "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:9"],
)
def test_with_an_exporter_or_a_sampler_a_part_records_spans_as_before(
    setting: str, tmp_path: Path
) -> None:
    name, value = setting.split("=", 1)
    env = {name: value, "PINGTAI_CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/c.db"}
    code = (
        "import json, sys\n"
        "from opentelemetry import trace\n"
        "from services.catalog.app import create_app\n"
        "from libs.common.telemetry import records_spans\n"
        "create_app()\n"
        "with open(sys.argv[1], 'w') as out:\n"
        "    json.dump([records_spans(), type(trace.get_tracer_provider()).__module__,\n"
        "        sorted(m for m in sys.modules if m in sys.argv[2:])], out)\n"
    )
    wanted = [
        "opentelemetry.instrumentation.fastapi",
        "opentelemetry.instrumentation.httpx",
        "opentelemetry.instrumentation.sqlalchemy",
    ]
    result = tmp_path / "result.json"
    _run(code, str(result), *wanted, cwd=tmp_path, env=env)
    recorded, provider_module, imported = json.loads(result.read_text())
    assert recorded is True
    assert provider_module == "libs.common.telemetry_sdk"
    assert imported == wanted


# A part built without the SDK (configure_process on, no OTEL_*), then the SDK installed with a
# span processor, as the gateway's and the delivery tests' fixtures do: a request still continues
# the caller's trace (its access line's trace_id, a span started while serving it).
SDK_AFTER_PART = f"""
import asyncio, json, sys

import httpx
from fastapi import APIRouter
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from libs.common import telemetry
from services.catalog.app import create_app

app = create_app()
exporter = InMemorySpanExporter()
telemetry.configure_tracing("t").add_span_processor(SimpleSpanProcessor(exporter))

async def into_catalog():
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://catalog") as client:
        response = await client.get(
            "/openapi.json", headers={{"traceparent": "00-{TRACE}-{SPAN}-01"}}
        )
        return response.status_code

status = asyncio.run(into_catalog())
with open(sys.argv[1], "w") as out:
    json.dump({{"records": telemetry.records_spans(), "status": status}}, out)
"""


def test_a_part_built_without_the_sdk_keeps_the_trace_once_the_sdk_records(
    tmp_path: Path,
) -> None:
    result = tmp_path / "result.json"
    env = {"PINGTAI_CATALOG_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/c.db"}
    done = _run(SDK_AFTER_PART, str(result), cwd=tmp_path, env=env)
    assert json.loads(result.read_text()) == {"records": True, "status": 200}
    log = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    access = [line for line in log if line.get("path") == "/openapi.json"]
    assert len(access) == 1, log[-5:]
    assert access[0]["trace_id"] == TRACE
    assert access[0]["span_id"] != SPAN


# configure_process_tracing as a part's process calls it, then one request to the recorder in a
# trace, one inside suppress_http_instrumentation(), and a span of the process's tracer.
HTTPX_PROCESS = f"""
import json, sys

import httpx
from opentelemetry import context as otel_context, trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from libs.common.telemetry import configure_process_tracing

spans = configure_process_tracing("t")
{RECORDER}
span = SpanContext(0x{TRACE}, 0x{SPAN}, is_remote=False, trace_flags=TraceFlags(1))
otel_context.attach(trace.set_span_in_context(NonRecordingSpan(span)))
with httpx.Client() as client:
    client.get(url)
otel = sorted(
    m for m in sys.modules
    if m.startswith(("opentelemetry.sdk", "opentelemetry.instrumentation"))
)
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

with suppress_http_instrumentation(), httpx.Client() as client:
    client.get(url)
otel_context.attach(otel_context.Context())
with trace.get_tracer("t").start_as_current_span("s") as started:
    root_valid = started.get_span_context().is_valid
server.shutdown()
with open(sys.argv[1], "w") as out:
    json.dump({{"spans": spans, "httpx": seen, "root_valid": root_valid, "otel": otel}}, out)
"""


@pytest.mark.parametrize(
    ("setting", "sent", "root_valid"),
    [
        ("", CLIENT_TRACEPARENT, True),
        ("OTEL_PYTHON_HTTPX_EXCLUDED_URLS=/other,/hook", None, True),
        ("OTEL_PYTHON_EXCLUDED_URLS=/hook", None, True),
        ("OTEL_PYTHON_EXCLUDED_URLS=/other", CLIENT_TRACEPARENT, True),
        # As the SDK's disabled provider gave: no-op tracers (no ids of their own), the current
        # trace passed on as it is.
        ("OTEL_SDK_DISABLED=true", re.compile(f"00-{TRACE}-{SPAN}-01"), False),
    ],
    ids=["default", "httpx-excluded", "excluded", "not-excluded", "sdk-disabled"],
)
def test_httpx_trace_context_honours_exclusions_suppression_and_a_disabled_sdk(
    setting: str, sent: re.Pattern[str] | None, root_valid: bool, tmp_path: Path
) -> None:
    """What OpenTelemetry's httpx instrumentation honoured, without it: excluded URLs get no
    ``traceparent``, nor any request inside ``suppress_http_instrumentation()``."""
    env = dict([setting.split("=", 1)]) if setting else {}
    result = tmp_path / "result.json"
    _run(HTTPX_PROCESS, str(result), cwd=tmp_path, env=env)
    seen = json.loads(result.read_text())
    assert seen["spans"] is False
    assert seen["otel"] == []
    assert seen["root_valid"] is root_valid
    first, suppressed = seen["httpx"]
    assert suppressed is None
    if sent is None:
        assert first is None
    else:
        assert sent.fullmatch(first or ""), first
