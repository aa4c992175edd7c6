"""Benchmark: the whole platform's resident memory after the demo seed (issue 12: <= 800 MB).

    .venv/bin/python bench/bench_memory.py [--settle 5] [--no-seed] [--env NAME=VALUE ...]

Starts ``pingtai up`` on free ports in a temporary folder (every part a process, the embedded
NATS server, SQLite files), loads ``pingtai seed --demo`` through the gateway, waits
``--settle`` seconds, then reads every process of the supervisor's tree from /proc:

- ``RSS``: ``VmRSS`` of ``/proc/<pid>/status``, what the process holds in memory, shared library
  pages included (summed over the platform, they count once per process);
- ``anon``: ``RssAnon``, the process's own heap and stacks (no file behind them);
- ``PSS``: ``Pss`` of ``/proc/<pid>/smaps_rollup``, each shared page divided among the processes
  sharing it (summed over the platform, what it takes from the machine);
- ``threads``: ``Threads`` of ``/proc/<pid>/status``.

The target is the summed RSS (the stricter figure); PSS is printed beside it. ``--env`` passes a
setting to ``pingtai up`` (and so to every part), to compare variants: ``--env
MALLOC_ARENA_MAX=8`` measures with glibc's default number of arenas on two cores. Exits 1 when the
summed RSS is above the target.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MEMORY_TARGET_MB = 800.0
SEED_TIMEOUT_S = 300.0


# --- processes: resident memory and CPU from /proc -------------------------------------------


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, as /proc/loadavg has them."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def children() -> dict[int, list[int]]:
    """Every live process's children, by parent pid."""
    found: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields start after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(fields[1])].append(int(entry.name))
    return found


def tree(root: int, by_parent: dict[int, list[int]]) -> list[int]:
    """``root`` and every process below it."""
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(by_parent.get(pid, ()))
    return pids


def kb(path: str, key: str) -> int:
    """A "Key:  123 kB" line's figure from a /proc file (0 if the process is gone)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(pid: int) -> int:
    return kb(f"/proc/{pid}/status", "VmRSS:")


def pss_kb(pid: int) -> int:
    """Resident memory with each shared page divided among the processes sharing it."""
    return kb(f"/proc/{pid}/smaps_rollup", "Pss:")


def cpu_s(pid: int) -> float:
    """The process's user + system CPU seconds so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def roots(var_dir: Path) -> dict[str, int]:
    """The platform's processes by name, from ``pingtai up``'s state file."""
    state = json.loads((var_dir / "pingtai-up.json").read_text())
    found = {"supervisor": int(state["supervisor_pid"]), "nats": int(state["nats_pid"])}
    found.update({name: int(info["pid"]) for name, info in state["parts"].items()})
    return found


@dataclass(frozen=True)
class Usage:
    """One named process's memory (KiB, summed over its tree) and CPU seconds."""

    rss_kb: int
    anon_kb: int
    pss_kb: int
    threads: int
    cpu_s: float


@dataclass(frozen=True)
class Sample:
    """Every process of the platform at one time."""

    at: float
    pids: dict[str, int]
    usage: dict[str, Usage]
    total_rss_kb: int  # the supervisor's whole tree: every part, NATS and the supervisor
    total_pss_kb: int  # the same, shared pages counted once (smaps_rollup)

    @property
    def rss_kb(self) -> dict[str, int]:
        return {name: u.rss_kb for name, u in self.usage.items()}

    @property
    def cpu_s(self) -> dict[str, float]:
        return {name: u.cpu_s for name, u in self.usage.items()}


def sample(var_dir: Path) -> Sample:
    """Read every process of the running platform (named by its state file) from /proc."""
    pids = roots(var_dir)
    by_parent = children()
    usage: dict[str, Usage] = {}
    for name, pid in pids.items():
        # The supervisor's own figure is the supervisor alone: its tree is the whole platform.
        procs = [pid] if name == "supervisor" else tree(pid, by_parent)
        usage[name] = Usage(
            rss_kb=sum(rss_kb(p) for p in procs),
            anon_kb=sum(kb(f"/proc/{p}/status", "RssAnon:") for p in procs),
            pss_kb=sum(pss_kb(p) for p in procs),
            threads=sum(kb(f"/proc/{p}/status", "Threads:") for p in procs),
            cpu_s=sum(cpu_s(p) for p in procs),
        )
    whole = tree(pids["supervisor"], by_parent)
    return Sample(
        at=time.monotonic(),
        pids=pids,
        usage=usage,
        total_rss_kb=sum(rss_kb(p) for p in whole),
        total_pss_kb=sum(pss_kb(p) for p in whole),
    )


def mb(kib: int) -> float:
    return kib / 1024


def memory_line(s: Sample) -> str:
    return f"total RSS {mb(s.total_rss_kb):.0f} MB (PSS {mb(s.total_pss_kb):.0f} MB)"


def table(s: Sample, ready: Sample) -> str:
    """Each process's memory (and its RSS when the platform was ready), and the total."""
    lines = [
        f"{'process':<12}{'ready RSS':>10}{'RSS MB':>9}{'anon MB':>9}{'PSS MB':>9}{'threads':>9}"
    ]
    for name, u in s.usage.items():
        before = ready.usage[name].rss_kb if name in ready.usage else 0
        lines.append(
            f"{name:<12}{mb(before):>10.1f}{mb(u.rss_kb):>9.1f}{mb(u.anon_kb):>9.1f}"
            f"{mb(u.pss_kb):>9.1f}{u.threads:>9}"
        )
    anon = sum(u.anon_kb for u in s.usage.values())
    lines.append(
        f"{'platform':<12}{mb(ready.total_rss_kb):>10.1f}{mb(s.total_rss_kb):>9.1f}"
        f"{mb(anon):>9.1f}{mb(s.total_pss_kb):>9.1f}{sum(u.threads for u in s.usage.values()):>9}"
    )
    return "\n".join(lines)


# --- the run ----------------------------------------------------------------------------------


def seed_demo(gateway: str, folder: Path) -> str:
    """``pingtai seed --demo`` against the running platform; its last line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGTAI_")}
    seeded = subprocess.run(
        [sys.executable, "-m", "pingtai", "seed", "--demo", "--gateway", gateway],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=SEED_TIMEOUT_S,
        env={**env, "PINGTAI_VAR_DIR": str(folder / "var")},
    )
    if seeded.returncode != 0:
        raise RuntimeError(f"the seed failed:\n{seeded.stdout[-3000:]}\n{seeded.stderr[-3000:]}")
    return seeded.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the seed")
    parser.add_argument("--no-seed", action="store_true", help="measure the empty platform")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="for pingtai up"
    )
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)

    from tests.e2e.test_up import Up

    print(f"load average before: {loadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="pingtai-bench-memory-") as name:
        folder = Path(name)
        up = Up(folder, env=extra)
        try:
            up.wait_for_line("ready in")
            ready = sample(folder / "var")
            print(f"ready: {memory_line(ready)}", flush=True)
            if not args.no_seed:
                print(seed_demo(up.gateway, folder), flush=True)
            time.sleep(args.settle)
            measured = sample(folder / "var")
        finally:
            up.stop()
    what = "the empty platform" if args.no_seed else "after the demo seed"
    print(f"\n{what}, {args.settle:.0f} s later; load average {loadavg()}")
    if extra:
        print("with " + " ".join(f"{k}={v}" for k, v in extra.items()))
    print(table(measured, ready))
    held = mb(measured.total_rss_kb) <= MEMORY_TARGET_MB
    print(
        f"\ntarget whole platform RSS <= {MEMORY_TARGET_MB:.0f} MB: "
        f"{'met' if held else 'MISSED'} ({mb(measured.total_rss_kb):.0f} MB; "
        f"PSS {mb(measured.total_pss_kb):.0f} MB)"
    )
    sys.exit(0 if held else 1)


if __name__ == "__main__":
    main()
