"""Benchmark: server-side render of the portal's catalogue and inbox pages with the demo province.

    .venv/bin/python bench/bench_portal.py [--gateway http://127.0.0.1:8000] [--requests 300]

Without ``--gateway`` it starts ``pingtai up`` on free ports in a temporary folder and loads
``pingtai seed --demo`` (as the browser tests do). It signs in through the portal and identity's
form as a browser would (authorization code + PKCE) and then, one request at a time, measures:

- straight at the portal's port (its render, which includes its calls through the gateway):
  ``/services`` anonymous; ``/services``, ``/services?q=企业&max_visits=0``,
  ``/services?kind=bundles`` and ``/work/inbox`` as a signed-in officer (session lookup, token,
  the service's answer, render);
- ``/work/inbox`` through the gateway too.

Prints p50/p95/p99/max per page. Target (issue 10): p95 <= 50 ms for the catalogue and the inbox.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from html import unescape
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pingtai.demo.identity import DEMO_PASSWORD

_FORM = re.compile(r'<form method="post" action="(?P<action>[^"]+)"')
_INPUT = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')


def sign_in(client: httpx.Client, phone: str) -> None:
    """A portal session in ``client``'s cookie jar, as a browser gets one."""
    page = client.get("/auth/login?next=/work/inbox", follow_redirects=True)
    action = unescape(_FORM.search(page.text)["action"])  # type: ignore[index]
    fields = {m["name"]: unescape(m["value"]) for m in _INPUT.finditer(page.text)}
    answer = client.post(
        str(page.url.join(action)), data={**fields, "username": phone, "password": DEMO_PASSWORD},
        follow_redirects=True,
    )  # fmt: skip
    if "/authorize/organisation" in answer.text:
        action = unescape(_FORM.search(answer.text)["action"])  # type: ignore[index]
        fields = {m["name"]: unescape(m["value"]) for m in _INPUT.finditer(answer.text)}
        answer = client.post(str(answer.url.join(action)), data=fields, follow_redirects=True)
    if not answer.url.path.endswith("/work/inbox"):
        raise RuntimeError(f"sign-in ended at {answer.url}")


def measure(client: httpx.Client, url: str, count: int) -> list[float]:
    """Milliseconds of ``count`` sequential GETs of ``url`` (after 20 warm-up requests)."""
    for _ in range(20):
        client.get(url).raise_for_status()
    times = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    return times


def report(name: str, times: list[float]) -> float:
    """Print the percentiles; return p95."""
    ordered = sorted(times)
    p = statistics.quantiles(ordered, n=100)
    print(f"{name:<48} p50 {p[49]:6.1f} ms  p95 {p[94]:6.1f} ms  p99 {p[98]:6.1f} ms  "
          f"max {ordered[-1]:6.1f} ms  (n={len(times)})")  # fmt: skip
    return p[94]


def run(gateway: str, portal: str, count: int) -> None:
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    worst = 0.0
    with httpx.Client(base_url=portal, timeout=30) as direct:
        # Anonymous: each render calls catalog anonymously through the gateway, which allows 600
        # anonymous requests a minute per address (the portal's): one page, fewer requests.
        anonymous = measure(direct, "/services", min(count, 150))
        worst = max(worst, report("portal  /services (anonymous)", anonymous))
        officer = httpx.Client(base_url=gateway, timeout=30)
        sign_in(officer, "13800000013")  # 周强, police officer
        session = str(officer.cookies.get("pingtai_portal_session"))
        direct.cookies.set("pingtai_portal_session", session)
        for path in ("/services", "/services?q=企业&max_visits=0", "/services?kind=bundles",
                     "/work/inbox"):  # fmt: skip
            worst = max(worst, report(f"portal  {path} (signed in)", measure(direct, path, count)))
        report("gateway /work/inbox (signed in)", measure(officer, "/work/inbox", count))
        officer.close()
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")
    print(f"worst p95 {worst:.1f} ms: target p95 <= 50 ms {'met' if worst <= 50 else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateway", help="a platform already up and seeded")
    parser.add_argument("--portal", help="the portal's own URL (default: gateway port + 6)")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    if args.gateway:
        gateway = args.gateway.rstrip("/")
        port = int(gateway.rsplit(":", 1)[1]) + 6
        run(gateway, args.portal or f"http://127.0.0.1:{port}", args.requests)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.e2e.test_up import Up

    with tempfile.TemporaryDirectory(prefix="pingtai-bench-portal-") as folder:
        up = Up(Path(folder))
        try:
            up.wait_for_line("ready in")
            env = {k: v for k, v in os.environ.items() if not k.startswith("PINGTAI_")}
            seeded = subprocess.run(
                [sys.executable, "-m", "pingtai", "seed", "--demo", "--gateway", up.gateway],
                cwd=folder, capture_output=True, text=True, timeout=300,
                env={**env, "PINGTAI_VAR_DIR": str(Path(folder) / "var")},
            )  # fmt: skip
            print(seeded.stdout.strip().splitlines()[-1] if seeded.stdout else seeded.stderr[-500:])
            portal = json.loads((Path(folder) / "var" / "pingtai-up.json").read_text())
            port = portal["parts"]["portal"].get("port") or up.port_base + 6
            run(up.gateway, f"http://127.0.0.1:{port}", args.requests)
        finally:
            up.stop()


if __name__ == "__main__":
    main()
