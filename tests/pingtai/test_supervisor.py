"""The `pingtai up` supervisor's own pieces: its readiness probe and the parts' environment."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pingtai.natsserver import free_port
from pingtai.parts import get_part
from pingtai.supervisor import (
    HUGE_PAGES_GLIBC_TUNABLES,
    NATS_GOGC,
    NATS_GOMEMLIMIT,
    PART_GLIBC_TUNABLES,
    Platform,
    answers_ok,
)


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/readyz" else 503)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_probe_tells_200_from_anything_else_and_from_nothing_listening(server: int) -> None:
    assert asyncio.run(answers_ok(server, "/readyz")) is True
    assert asyncio.run(answers_ok(server, "/healthz?js-enabled-only=true")) is False
    assert asyncio.run(answers_ok(free_port(), "/readyz")) is False


def test_the_probe_gives_up_on_a_server_that_never_answers() -> None:
    async def silent() -> bool:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await answers_ok(port, "/readyz")

    assert asyncio.run(asyncio.wait_for(silent(), 10)) is False


def test_parts_get_the_malloc_settings_unless_the_operator_chose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv("PYTHONNODEBUGRANGES", raising=False)
    platform = Platform(var_dir=tmp_path, port_base=24000, nats_url=None)
    env = platform.env()
    assert env["GLIBC_TUNABLES"] == PART_GLIBC_TUNABLES == "glibc.malloc.mmap_threshold=131072"
    assert env["PYTHONNODEBUGRANGES"] == "1"
    assert env["PINGTAI_GATEWAY_PORT"] == "24000"
    # Huge pages only for the part that maps argon2id's large buffer again and again.
    identity = platform.env(get_part("identity"))["GLIBC_TUNABLES"]
    assert identity == HUGE_PAGES_GLIBC_TUNABLES
    assert identity.split(":") == ["glibc.malloc.mmap_threshold=131072", "glibc.malloc.hugetlb=1"]
    for name in ("catalog", "exchange", "workflow", "evaluation", "portal", "gateway"):
        assert platform.env(get_part(name))["GLIBC_TUNABLES"] == PART_GLIBC_TUNABLES

    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert platform.env()["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"
    assert platform.env(get_part("identity"))["GLIBC_TUNABLES"] == "glibc.malloc.arena_max=2"


def test_the_embedded_nats_server_runs_with_a_go_memory_limit_and_gc_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    monkeypatch.delenv("GOGC", raising=False)
    platform = Platform(var_dir=tmp_path, port_base=24000, nats_url=None, nats_port=free_port())
    asyncio.run(platform.start_nats())
    try:
        assert platform.nats is not None and platform.nats.process is not None
        environ = Path(f"/proc/{platform.nats.process.pid}/environ").read_bytes().split(b"\0")
        assert f"GOMEMLIMIT={NATS_GOMEMLIMIT}".encode() in environ
        assert f"GOGC={NATS_GOGC}".encode() in environ
        assert platform.nats_url == platform.nats.url
    finally:
        if platform.nats is not None:
            platform.nats.stop()


_SUPERVISOR_MODULES = """
import atexit, json, sys
def seen():
    print(json.dumps({m: sys.modules.get(m) is not None for m in ("ssl", "typer", "pydantic")}))
atexit.register(seen)
sys.argv = ["pingtai up", "--help"]
import pingtai.supervise
"""


def test_the_long_lived_supervisor_holds_neither_ssl_nor_the_command_line_libraries() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _SUPERVISOR_MODULES], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--port-base" in done.stdout
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded == {"ssl": False, "typer": False, "pydantic": False}
