"""The embedded nats-server's JetStream store encrypted at rest: its key, restarts, upgrades."""

from __future__ import annotations

import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import nats
import pytest
from nats.js.api import StreamConfig

from pingtai.natsserver import NatsServer, store_key

T = TypeVar("T")

# Plain text an event carries; found in the store's files only when they are not encrypted.
MARKER = b"citizen-330106199001011234"
TWO = [MARKER + b"0", MARKER + b"1"]  # what _publish_two publishes


def _files_hold(store_dir: Path, needle: bytes) -> bool:
    return any(
        needle in path.read_bytes()
        for path in (store_dir / "jetstream").rglob("*")
        if path.is_file()
    )


async def _publish(server: NatsServer, count: int) -> None:
    client = await nats.connect(server.url)
    try:
        js = client.jetstream()
        await js.add_stream(StreamConfig(name="PINGTAI_TEST", subjects=["pingtai.test.>"]))
        for i in range(count):
            await js.publish("pingtai.test.thing.happened", MARKER + str(i).encode())
    finally:
        await client.close()


async def _messages(server: NatsServer) -> list[bytes]:
    client = await nats.connect(server.url)
    try:
        js = client.jetstream()
        info = await js.stream_info("PINGTAI_TEST")
        return [
            (await js.get_msg("PINGTAI_TEST", seq)).data or b""
            for seq in range(info.state.first_seq, info.state.last_seq + 1)
        ]
    finally:
        await client.close()


def test_the_store_key_is_made_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "nats" / "store.key"
    key = store_key(path)
    assert key.startswith("nats-") and len(key) == 5 + 64  # 32 random bytes, hex
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store_key(path) == key
    assert store_key(tmp_path / "other.key") != key
    assert [p.name for p in path.parent.iterdir()] == ["store.key"]  # no draft left behind


def test_an_empty_key_file_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "store.key"
    path.write_text("")
    with pytest.raises(ValueError, match="empty"):
        store_key(path)


def test_an_encrypted_store_needs_a_known_cipher_and_its_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="store_cipher"):
        NatsServer(tmp_path, store_cipher="rot13", store_key="k")
    with pytest.raises(ValueError, match="key"):
        NatsServer(tmp_path, store_cipher="chachapoly")
    # nats-server reads the key as a configuration value: digits would make it a number.
    for key in ("0123456789abcdef0123", "short", "has#comment-start"):
        with pytest.raises(ValueError, match="starting with a letter"):
            NatsServer(tmp_path, store_cipher="aes", store_key=key)


def _encrypted(store_dir: Path, key: str) -> NatsServer:
    return NatsServer(store_dir, store_cipher="chachapoly", store_key=key)


async def _run(server: NatsServer, work: Callable[[NatsServer], Awaitable[T]]) -> T:
    """Start ``server``, do ``work`` with it, stop it."""
    server.start()
    try:
        return await work(server)
    finally:
        server.stop()


async def _publish_two(server: NatsServer) -> None:
    await _publish(server, 2)


async def test_an_encrypted_store_hides_events_on_disk_and_keeps_them_across_restarts(
    tmp_path: Path,
) -> None:
    key = store_key(tmp_path / "store.key")
    server = _encrypted(tmp_path / "nats", key)

    async def publish_and_read_command_line(server: NatsServer) -> bytes:
        await _publish_two(server)
        assert server.process is not None
        return Path(f"/proc/{server.process.pid}/cmdline").read_bytes()

    cmdline = await _run(server, publish_and_read_command_line)
    assert not _files_hold(server.store_dir, MARKER)
    # The key is in the server's environment only: not its command line, configuration or log.
    assert key.encode() not in cmdline
    assert key not in server.config_file.read_text()
    assert key not in server.log_file.read_text()
    assert "ChaCha20-Poly1305" in server.log_file.read_text()
    assert await _run(_encrypted(server.store_dir, key), _messages) == [
        MARKER + b"0",
        MARKER + b"1",
    ]


async def test_a_plain_store_is_encrypted_when_the_server_starts_with_a_key(
    tmp_path: Path,
) -> None:
    plain = NatsServer(tmp_path / "nats")
    await _run(plain, _publish_two)
    assert _files_hold(plain.store_dir, MARKER)

    key = store_key(tmp_path / "store.key")
    assert await _run(_encrypted(plain.store_dir, key), _messages) == TWO
    assert not _files_hold(plain.store_dir, MARKER)


async def test_an_encrypted_store_is_not_started_without_its_key_or_with_another(
    tmp_path: Path,
) -> None:
    # Either way nats-server would not load the streams, and delete their files when a part
    # declares its stream again: the start is refused before the server runs.
    key = store_key(tmp_path / "store.key")
    store_dir = tmp_path / "nats"
    await _run(_encrypted(store_dir, key), _publish_two)

    with pytest.raises(RuntimeError, match="is encrypted: start it with its key"):
        NatsServer(store_dir).launch()
    with pytest.raises(RuntimeError, match="encrypted with another key"):
        _encrypted(store_dir, store_key(tmp_path / "other.key")).launch()
    assert await _run(_encrypted(store_dir, key), _messages) == TWO
