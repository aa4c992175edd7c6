"""Benchmark: nats-server's resident memory under the soak's event mix, settings side by side.

    .venv/bin/python bench/bench_nats_memory.py [--seconds 240] [--warmup 60] [--sample-every 10]
        [--setting NAME:VAR=VALUE,...[,encrypted]] ...

Starts one embedded nats-server (``pingtai.natsserver.NatsServer``) per ``--setting``, all at
once, each with the seven streams the platform declares (``libs.common.events.streams``: the same
configuration, so the same block size) and durable pull consumers acking every event. Publishers
write at the rates the soak (``bench_soak.py``, 0.5 flows/s) wrote to each stream, measured from the
streams' counts after a soak: workflow 20 events/s of ≈ 940 bytes, exchange 0.6/s of ≈ 1,700,
evaluation 0.55/s of ≈ 1,160, identity 0.6/s of ≈ 560; catalog and gateway idle.

Phase 1, ``--seconds``: the soak's traffic. Printed per setting: the resident memory (``VmRSS``)
at ``--warmup`` (the soak's window starts there) and at the end, the growth between them, the
lowest and highest sample in between, and nats-server's CPU per event.

Phase 2, what hours of such traffic leave: each busy stream other than workflow gets ≈ 3.6 MB of
events at once (its 4 MB block almost full, as exchange's is after ≈ an hour at the soak's rate,
identity's after ≈ 4), then the soak's traffic runs 90 s more. Printed: the resident memory over
those 90 s and nats-server's CPU as a share of one core. nats-server keeps the block each stream
is writing in memory while consumers read each new event from it (docs/operations.md), so this is
the long run's working set; a memory limit (``GOMEMLIMIT``) below it makes Go collect without
pause, which shows here as CPU.

A setting is ``NAME:VAR=VALUE,...`` with environment variables for nats-server (``GOGC``,
``GOMEMLIMIT``), ``encrypted`` for a store encrypted at rest (2 MB blocks) and ``interest`` for
streams that keep an event only until every consumer acknowledged it, each with a mirror keeping
every event (a layout tried in the seventh session, not the platform's). By default the one
``pingtai up`` uses against the two fixed budgets tried in the seventh session.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_memory import cpu_s, loadavg, rss_kb

from libs.common.events.streams import StreamLimits, stream_config
from pingtai.natsserver import NatsServer
from pingtai.supervisor import NATS_GOGC, NATS_GOMEMLIMIT


@dataclass(frozen=True)
class Flow:
    """One part's stream: events a second, bytes an event, consumers reading it."""

    rate: float
    size: int
    consumers: int


# Measured after a soak at 0.5 flows/s (each stream's messages and bytes over 150 s).
MIX = {
    "workflow": Flow(20.0, 940, 3),
    "exchange": Flow(0.6, 1700, 2),
    "evaluation": Flow(0.55, 1160, 2),
    "identity": Flow(0.6, 560, 2),
    "catalog": Flow(0.0, 1800, 2),
    "gateway": Flow(0.0, 700, 1),
    "portal": Flow(0.0, 500, 1),
}
FILL_BYTES = 3_600_000  # phase 2: almost a whole 4 MB block per busy stream
FILL_RATE = 400.0  # events a second while filling
AFTER_FILL_S = 90.0
DEFAULT_SETTINGS = [
    f"pingtai-up:GOGC={NATS_GOGC},GOMEMLIMIT={NATS_GOMEMLIMIT}",
    "budget-32MiB:GOGC=off,GOMEMLIMIT=32MiB",
    "budget-28MiB:GOGC=off,GOMEMLIMIT=28MiB",
]


@dataclass
class Setting:
    name: str
    env: dict[str, str]
    encrypted: bool
    interest: bool = False
    samples: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MB)
    report: str = ""

    @classmethod
    def parse(cls, text: str) -> Setting:
        name, _, rest = text.partition(":")
        env: dict[str, str] = {}
        encrypted = interest = False
        for item in filter(None, rest.split(",")):
            if item == "encrypted":
                encrypted = True
            elif item == "interest":
                interest = True
            else:
                key, _, value = item.partition("=")
                env[key] = value
        return cls(name=name, env=env, encrypted=encrypted, interest=interest)


def rss_mb(pid: int) -> float:
    return rss_kb(pid) / 1024


async def publish(js: JetStreamContext, part: str, flow: Flow, rate: float, until: float) -> int:
    """Publish ``part``'s events at ``rate`` a second (open loop) until ``until``."""
    subjects = [f"pingtai.{part}.thing.e{i}" for i in range(8)]
    started = time.monotonic()
    sent = 0
    while (now := time.monotonic()) < until:
        due = started + sent / rate
        if due > now:
            await asyncio.sleep(due - now)
        body = json.dumps({"id": os.urandom(8).hex(), "data": "x" * (flow.size - 250)}).encode()
        headers = {
            "Nats-Msg-Id": os.urandom(16).hex(),
            "traceparent": f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01",
        }
        await js.publish(random.choice(subjects), body, headers=headers)
        sent += 1
    return sent


async def consume(subscription: JetStreamContext.PullSubscription, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            messages = await subscription.fetch(50, timeout=1.0)
        except nats.errors.TimeoutError:
            continue
        for message in messages:
            await message.ack()


async def traffic(js: JetStreamContext, until: float, scale: float = 1.0) -> int:
    runs = [
        publish(js, part, flow, flow.rate * scale, until)
        for part, flow in MIX.items()
        if flow.rate > 0
    ]
    return sum(await asyncio.gather(*runs))


async def run(setting: Setting, folder: Path, args: argparse.Namespace) -> None:
    server = NatsServer(
        folder / setting.name,
        store_cipher="chachapoly" if setting.encrypted else None,
        store_key=os.urandom(24).hex() if setting.encrypted else None,
    )
    server.launch(env={**os.environ, **setting.env})
    await asyncio.to_thread(server.wait_ready)
    assert server.process is not None
    pid = server.process.pid
    client = await nats.connect(server.url)
    js = client.jetstream()
    stop = asyncio.Event()
    readers = []
    limits = StreamLimits(store_encrypted=setting.encrypted)
    for part, flow in MIX.items():
        config = stream_config(part=part, limits=limits)
        if setting.interest:
            config.retention = RetentionPolicy.INTEREST
        await js.add_stream(config)
        if setting.interest:
            archive = stream_config(part=part, limits=limits)
            archive.name, archive.subjects = f"{config.name}_ARCHIVE", None
            archive.mirror = StreamSource(name=str(config.name))
            await js.add_stream(archive)
        for n in range(flow.consumers):
            durable = f"reader-{n}"
            await js.add_consumer(
                str(config.name),
                ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT),
            )
            subscription = await js.pull_subscribe_bind(durable=durable, stream=str(config.name))
            readers.append(asyncio.create_task(consume(subscription, stop)))

    async def sampler() -> None:
        started = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(args.sample_every)
            setting.samples.append((time.monotonic() - started, rss_mb(pid)))

    sampling = asyncio.create_task(sampler())
    cpu0 = cpu_s(pid)
    events = await traffic(js, time.monotonic() + args.seconds)
    cpu1 = cpu_s(pid)
    window = [mb for at, mb in setting.samples if at >= args.warmup] or [rss_mb(pid)]

    # Phase 2: every busy stream's block almost full, then the soak's traffic again.
    fills = [
        publish(js, part, flow, FILL_RATE, time.monotonic() + FILL_BYTES / flow.size / FILL_RATE)
        for part, flow in MIX.items()
        if flow.rate > 0 and part != "workflow"
    ]
    await asyncio.gather(*fills)
    await traffic(js, time.monotonic() + 20.0)  # let the fill's deliveries settle
    after_from = len(setting.samples)
    cpu2, at2 = cpu_s(pid), time.monotonic()
    await traffic(js, time.monotonic() + AFTER_FILL_S)
    cpu3, at3 = cpu_s(pid), time.monotonic()
    after = [mb for _, mb in setting.samples[after_from:]] or [rss_mb(pid)]

    stop.set()
    sampling.cancel()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, sampling, return_exceptions=True)
    await client.close()
    server.stop()
    growth = (window[-1] / window[0] - 1) * 100
    setting.report = (
        f"{setting.name:16} window {window[0]:5.1f} -> {window[-1]:5.1f} MB ({growth:+5.1f} %), "
        f"{min(window):.1f}-{max(window):.1f} MB; {1000 * (cpu1 - cpu0) / max(events, 1):.2f} ms "
        f"of CPU an event | blocks full: {min(after):.1f}-{max(after):.1f} MB, "
        f"{100 * (cpu3 - cpu2) / (at3 - at2):.1f} % of a core"
    )


async def main_async(settings: list[Setting], args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="pingtai-bench-nats-memory-") as folder:
        runs = asyncio.gather(*(run(s, Path(folder), args) for s in settings))
        started = time.monotonic()
        while not runs.done():
            await asyncio.wait([runs], timeout=30)
            if not runs.done():
                line = ", ".join(
                    f"{s.name} {s.samples[-1][1]:.1f} MB" for s in settings if s.samples
                )
                print(f"[{time.monotonic() - started:5.0f} s] {line}", flush=True)
        await runs


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--seconds", type=float, default=240.0, help="phase 1 (the soak's traffic)")
    parser.add_argument("--warmup", type=float, default=60.0, help="the window starts here")
    parser.add_argument("--sample-every", type=float, default=10.0)
    parser.add_argument(
        "--setting", action="append", help="NAME:VAR=VALUE,...[,encrypted][,interest]"
    )
    args = parser.parse_args()
    settings = [Setting.parse(text) for text in args.setting or DEFAULT_SETTINGS]
    total = args.seconds + AFTER_FILL_S + 40
    print(f"load average before: {loadavg()}; about {total:.0f} s", flush=True)
    asyncio.run(main_async(settings, args))
    print(f"load average after: {loadavg()}")
    for setting in settings:
        print(setting.report)
        print("   samples (MB):", " ".join(f"{mb:.1f}" for _, mb in setting.samples))


if __name__ == "__main__":
    main()
