"""The `pingtai up` supervisor's own pieces: its readiness probe and the parts' environment."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nats
import pytest

from pingtai.natsserver import NatsServer, free_port
from pingtai.parts import get_part
from pingtai.supervisor import (
    HUGE_PAGES_GLIBC_TUNABLES,
    NATS_GOGC,
    NATS_GOMEMLIMIT,
    NATS_STORE_CIPHER,
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


@contextmanager
def _embedded_nats(var_dir: Path) -> Iterator[tuple[Platform, NatsServer]]:
    """`pingtai up`'s NATS in ``var_dir``, on a free port, stopped afterwards."""
    platform = Platform(var_dir=var_dir, port_base=24000, nats_url=None, nats_port=free_port())
    asyncio.run(platform.start_nats())
    assert platform.nats is not None
    try:
        yield platform, platform.nats
    finally:
        platform.nats.stop()


def test_the_embedded_nats_server_runs_with_a_go_memory_limit_and_gc_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOMEMLIMIT", raising=False)
    monkeypatch.delenv("GOGC", raising=False)
    with _embedded_nats(tmp_path) as (platform, nats_server):
        assert nats_server.process is not None
        environ = Path(f"/proc/{nats_server.process.pid}/environ").read_bytes().split(b"\0")
        assert f"GOMEMLIMIT={NATS_GOMEMLIMIT}".encode() in environ
        assert f"GOGC={NATS_GOGC}".encode() in environ
        assert platform.nats_url == nats_server.url


async def _declare_a_stream(url: str) -> None:
    client = await nats.connect(url)
    try:
        await client.jetstream().add_stream(name="PINGTAI_TEST", subjects=["pingtai.test.>"])
    finally:
        await client.close()


def test_the_embedded_nats_store_is_plain_unless_the_operator_asks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PINGTAI_NATS_STORE_CIPHER", raising=False)
    monkeypatch.delenv("PINGTAI_NATS_STORE_KEY", raising=False)
    assert NATS_STORE_CIPHER == "none"
    with _embedded_nats(tmp_path) as (platform, nats_server):
        assert nats_server.store_cipher is None
        assert platform.env(get_part("workflow"))["PINGTAI_NATS_STORE_CIPHER"] == "none"
        assert "ChaCha20-Poly1305" not in nats_server.log_file.read_text()
    assert not (tmp_path / "nats" / "store.key").exists()


def test_the_embedded_nats_store_is_encrypted_with_a_key_made_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PINGTAI_NATS_STORE_CIPHER", "chachapoly")
    monkeypatch.delenv("PINGTAI_NATS_STORE_KEY", raising=False)
    key_file = tmp_path / "nats" / "store.key"
    with _embedded_nats(tmp_path) as (platform, nats_server):
        assert nats_server.store_cipher == "chachapoly"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert "ChaCha20-Poly1305" in nats_server.log_file.read_text()
        # The parts declare their streams for an encrypted store and never see its key.
        monkeypatch.setenv("PINGTAI_NATS_STORE_KEY", "an-operators-own-key")
        env = platform.env(get_part("workflow"))
        assert env["PINGTAI_NATS_STORE_CIPHER"] == "chachapoly"
        assert "PINGTAI_NATS_STORE_KEY" not in env
    key = key_file.read_text()

    # The next start reuses the key; a start without encryption is refused (it would lose the
    # streams: tests/pingtai/test_natsserver.py).
    monkeypatch.delenv("PINGTAI_NATS_STORE_KEY")
    with _embedded_nats(tmp_path) as (_, nats_server):
        asyncio.run(_declare_a_stream(nats_server.url))
    assert key_file.read_text() == key
    monkeypatch.setenv("PINGTAI_NATS_STORE_CIPHER", "none")
    plain = Platform(var_dir=tmp_path, port_base=24000, nats_url=None, nats_port=free_port())
    plain.nats = NatsServer(tmp_path / "elsewhere")  # as if started: the parts hear "none"
    assert plain.env()["PINGTAI_NATS_STORE_CIPHER"] == "none"
    plain.nats = None
    with pytest.raises(SystemExit, match="is encrypted: start it with its key"):
        asyncio.run(plain.start_nats())
    assert plain.nats is None


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
