"""`pingtai up` end to end: real processes, a real NATS server, the real gateway."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pingtai.natsserver import free_port, port_is_free
from pingtai.parts import PARTS

pytestmark = pytest.mark.e2e

SERVICES = ("identity", "catalog", "exchange", "workflow", "evaluation")
READY_TIMEOUT_S = 90.0


def _free_port_base() -> int:
    """A base port whose seven successors are all free, below the kernel's ephemeral range.

    A base inside /proc/sys/net/ipv4/ip_local_port_range (32768-60999 here) can be free when
    checked and then taken by an outgoing connection's source port before the part binds it.
    """
    for _ in range(200):
        base = random.randint(20000, _ephemeral_low() - 8)
        if all(port_is_free(base + offset) for offset in range(7)):
            return base
    raise RuntimeError("no block of seven free ports")


def _ephemeral_low() -> int:
    """The first port the kernel may hand out as a source port (32768 if unknown)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768
    return max(low, 20008)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; its parent will reap it.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


class Up:
    """A `pingtai up` process and the lines it printed (``env``: settings to give it)."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.port_base = _free_port_base()
        self.gateway = f"http://127.0.0.1:{self.port_base}"
        self.lines: list[str] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("PINGTAI_")} | (env or {})
        env["PINGTAI_VAR_DIR"] = str(workdir / "var")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pingtai", "up", "--port-base", str(self.port_base),
             "--nats-port", str(free_port())],
            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for_line(self, text: str, timeout: float = READY_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if text in line:
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r}; output:\n{self.output()[-4000:]}")

    def state(self) -> dict[str, object]:
        state: dict[str, object] = json.loads(
            (self.workdir / "var" / "pingtai-up.json").read_text()
        )
        return state

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=60)
        self.reader.join(timeout=5)
        return code


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Up]:
    up = Up(tmp_path)
    try:
        up.wait_for_line("ready in")
        yield up
    finally:
        if up.process.poll() is None:
            up.process.send_signal(signal.SIGINT)
            try:
                up.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                up.process.kill()


@pytest.mark.timeout(420)  # a start, two demo seeds, a restart and a stop, at load 10
def test_up_serves_every_part_through_the_gateway_survives_a_crash_and_stops_clean(
    platform: Up,
) -> None:
    state = platform.state()
    parts = state["parts"]
    assert isinstance(parts, dict)
    assert sorted(parts) == sorted(p.name for p in PARTS)
    pids = [info["pid"] for info in parts.values()] + [state["nats_pid"]]
    assert all(isinstance(pid, int) and _alive(pid) for pid in pids)

    with httpx.Client(base_url=platform.gateway, timeout=10) as client:
        for part in SERVICES:
            response = client.get(f"/api/{part}/healthz", headers={"X-Request-ID": f"smoke-{part}"})
            assert response.status_code == 200, response.text
            assert response.json() == {"status": "ok", "part": part}
            assert response.headers["x-request-id"] == f"smoke-{part}"
            ready = client.get(f"/api/{part}/readyz")
            assert ready.status_code == 200
            assert ready.json()["checks"]["database"]["ok"] is True
            # Every service publishes events: it reaches the embedded NATS (in the background).
            deadline = time.monotonic() + 15
            while not ready.json()["checks"]["nats"]["ok"] and time.monotonic() < deadline:
                time.sleep(0.1)
                ready = client.get(f"/api/{part}/readyz")
            assert ready.json()["checks"]["nats"]["ok"] is True, ready.json()
            assert ready.json()["status"] == "ready"

        assert client.get("/healthz").json()["part"] == "gateway"
        portal = client.get("/")
        assert portal.status_code == 200
        assert "text/html" in portal.headers["content-type"]

        # Bad input comes back as problem documents, through the gateway as from the service.
        wrong_method = client.delete("/api/catalog/healthz")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["content-type"] == "application/problem+json"
        assert wrong_method.json()["status"] == 405
        missing = client.get("/api/workflow/v1/no-such-thing")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        assert missing.json()["request_id"] == missing.headers["x-request-id"]
        unknown_part = client.get("/api/nonesuch/v1")
        assert unknown_part.status_code == 404
        assert unknown_part.headers["content-type"] == "application/problem+json"
        too_big = client.post("/api/exchange/v1", content=b"x" * (11 * 1024 * 1024))
        assert too_big.status_code == 413
        assert too_big.headers["content-type"] == "application/problem+json"

        # The OpenID provider answers through the gateway, under the gateway's own URL.
        discovery = client.get("/.well-known/openid-configuration").json()
        assert discovery["issuer"] == platform.gateway
        assert discovery["token_endpoint"] == f"{platform.gateway}/oauth2/token"

    # The demo province loads through the gateway's public API, and again without harm.
    for _ in range(2):
        seeded = subprocess.run(
            [sys.executable, "-m", "pingtai", "seed", "--demo", "--gateway", platform.gateway],
            cwd=platform.workdir, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        assert "demo province loaded" in seeded.stdout
    with httpx.Client(base_url=platform.gateway, timeout=10) as client:
        token = client.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            auth=("platform-admin", "pingtai-dev-admin-secret"),
        ).json()["access_token"]
        officers = client.get(
            "/api/identity/v1/users",
            params={"phone": "13800000011"},
            headers={"Authorization": f"Bearer {token}"},
        ).json()["items"]
        assert [(p["name"], p["acr"]) for p in officers] == [("赵磊", 3)]
        assert sorted(m["role"] for m in officers[0]["memberships"]) == ["citizen", "officer"]

    # A part that dies is reported and restarted, and the platform still stops clean after.
    pids.append(_crash_and_see_it_restarted(platform, "workflow"))

    status = subprocess.run(
        [sys.executable, "-m", "pingtai", "status"], cwd=platform.workdir,
        env={**os.environ, "PINGTAI_VAR_DIR": str(platform.workdir / "var")},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert status.returncode == 0, status.stdout + status.stderr
    assert status.stdout.count(" ready") == len(PARTS)

    assert platform.stop() == 0
    assert "stopped; no part is left running" in platform.output()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [pid for pid in pids if _alive(pid)] == []
    assert not (platform.workdir / "var" / "pingtai-up.json").exists()


def _crash_and_see_it_restarted(platform: Up, part: str) -> int:
    """SIGKILL ``part``: `pingtai up` reports the exit and restarts it (once), and it answers
    through the gateway again; the new process's pid. On the platform of the test above: a
    start is most of a minute here."""
    parts = platform.state()["parts"]
    assert isinstance(parts, dict)
    victim = parts[part]["pid"]
    os.kill(victim, signal.SIGKILL)

    platform.wait_for_line(f"{part} exited with code -9", timeout=30)
    deadline = time.monotonic() + 60
    restarted: dict[str, object] = {}
    while time.monotonic() < deadline:
        parts = platform.state()["parts"]
        assert isinstance(parts, dict)
        restarted = parts[part]
        if restarted["pid"] != victim:
            try:
                response = httpx.get(f"{platform.gateway}/api/{part}/readyz", timeout=2)
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    else:
        raise AssertionError(f"{part} did not come back:\n{platform.output()[-3000:]}")
    assert restarted["restarts"] == 1
    assert not _alive(victim)
    pid = restarted["pid"]
    assert isinstance(pid, int) and _alive(pid)
    return pid
