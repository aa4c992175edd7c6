"""A part's stream: declared for the block size nats-server gives it, plain or encrypted store."""

from __future__ import annotations

from pathlib import Path

import nats
import pytest

from libs.common.events.streams import (
    MAX_MSGS_PER_SUBJECT,
    StreamLimits,
    ensure_stream,
    stream_config,
)
from pingtai.natsserver import NatsServer, store_key
from tests.common.conftest import SampleSettings

EVENT = b"e" * 1100


def test_a_plain_store_gets_the_per_subject_limit_an_encrypted_one_does_not() -> None:
    plain = stream_config(part="sample", limits=StreamLimits())
    assert plain.max_msgs_per_subject == MAX_MSGS_PER_SUBJECT
    encrypted = stream_config(part="sample", limits=StreamLimits(store_encrypted=True))
    assert encrypted.max_msgs_per_subject == -1
    # Nothing is dropped either way: every event stays for max_age.
    assert encrypted.max_age == plain.max_age and encrypted.max_bytes == plain.max_bytes == -1


def test_the_limits_say_whether_the_store_is_encrypted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINGTAI_NATS_STORE_CIPHER", raising=False)
    assert StreamLimits.from_settings(SampleSettings()).store_encrypted is False
    monkeypatch.setenv("PINGTAI_NATS_STORE_CIPHER", "chachapoly")
    assert StreamLimits.from_settings(SampleSettings()).store_encrypted is True
    monkeypatch.setenv("PINGTAI_NATS_STORE_CIPHER", "none")
    assert StreamLimits.from_settings(SampleSettings()).store_encrypted is False


async def _block_sizes(server: NatsServer, limits: StreamLimits, total: int) -> list[int]:
    """Publish ``total`` bytes of events to the sample part's stream; its block files' sizes."""
    client = await nats.connect(server.url)
    try:
        js = client.jetstream()
        await ensure_stream(js, part="sample", limits=limits)
        for i in range(total // len(EVENT)):
            await js.publish(f"pingtai.sample.thing.e{i % 12}", EVENT)
    finally:
        await client.close()
    blocks = (server.store_dir / "jetstream").rglob("PINGTAI_SAMPLE/msgs/*.blk")
    return [path.stat().st_size for path in sorted(blocks, key=lambda p: int(p.stem))]


@pytest.mark.parametrize(
    ("encrypted", "block_mb"),
    [(True, 2), (False, 4)],
    ids=["encrypted store: 2 MB", "plain store: 4 MB"],
)
async def test_the_stream_is_written_in_blocks_of_the_expected_size(
    tmp_path: Path, encrypted: bool, block_mb: int
) -> None:
    # The block being written is what nats-server holds in memory for a busy stream.
    cipher = "chachapoly" if encrypted else None
    key = store_key(tmp_path / "store.key") if encrypted else None
    server = NatsServer(tmp_path / "nats", store_cipher=cipher, store_key=key)
    server.start()
    try:
        limits = StreamLimits(store_encrypted=encrypted)
        sizes = await _block_sizes(server, limits, total=(block_mb + 1) * 1024 * 1024)
    finally:
        server.stop()
    assert len(sizes) == 2
    assert block_mb * 1024 * 1024 - 2 * len(EVENT) < sizes[0] <= block_mb * 1024 * 1024
