"""Benchmark: the identity service's OpenID provider, one uvicorn process (1 worker).

    .venv/bin/python bench/bench_identity.py [--seconds 8] [--concurrency 32] [--alg ES256]
                                             [--generator auto|wrk|python]
                                             [--stages cpu,cc,refresh,signin]
                                             [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test]

Without ``--database-url`` it migrates a SQLite file in a temporary folder; with a PostgreSQL URL
it creates a scratch database ``pingtai_bench_<random>`` on that server (the URL's database is only
used to connect), migrates it and drops it at the end. Either way it then seeds one person
(argon2id with the production parameters of services/identity/passwords.py), two clients and a
pool of ``--refresh-pool`` live refresh tokens (one family each, as many sign-ins would leave),
then starts ``uvicorn services.identity.app:create_app`` as a separate process on a free
127.0.0.1 port.
Stage 0 (``cpu``), before the server starts: the app called in this process through ASGI, one
request at a time, no sockets: CPU time per client-credentials and per refresh grant
(``time.process_time``), a figure a busy machine disturbs far less than a rate.
Then stages each bounded by ``--seconds``, ``--concurrency`` requests in flight:

1. client-credentials grants (client_secret_basic): POST /oauth2/token;
2. refresh-token grants with rotation: each request presents a fresh token from the pool;
3. password sign-ins: GET /oauth2/authorize (prompt=login) and POST of the sign-in form, up to the
   303 with the code.

The load generator for stages 1 and 2 is ``wrk`` (Debian package ``wrk``) with a Lua script for
the form bodies when it is installed, else this process (aiohttp), which competes with the server
for the same two cores; the output says which. Sign-ins (cookies, an HTML form) always use aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libs.common.database import Database
from libs.common.migrations import migrate
from pingtai.natsserver import free_port
from services.identity import passwords
from services.identity.oauth.clients import service as clients_service
from services.identity.oauth.clients.schemas import ClientCreate
from services.identity.oauth.derived_keys import new_opaque_token, token_digest
from services.identity.oauth.tokens.models import RefreshToken
from services.identity.organisations.models import Membership
from services.identity.people.models import User

SECRET = "bench-identity-secret-0123456789abcdef0123456789"
PASSWORD = "Bench-password-42"
PHONE = "13800000001"
REDIRECT_URI = "https://bench.example.cn/callback"
INPUT = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')


async def seed(url: str, *, refresh_pool: int = 0) -> tuple[dict[str, str], list[str]]:
    """The clients' secrets and ``refresh_pool`` live refresh tokens of bench-app."""
    database = Database(url)
    secrets_by_client: dict[str, str] = {}
    refresh_tokens: list[str] = []
    async with database.sessionmaker() as session:
        user = User(name="王丽", phone=PHONE, password_hash=await passwords.hash_password(PASSWORD))
        session.add(user)
        await session.flush()
        session.add(Membership(user_id=user.id, org_id=None, role="citizen"))
        for registration in (
            ClientCreate(
                client_id="bench-system",
                name="A department's system",
                grant_types=["client_credentials"],
                scopes=["exchange:read"],
                roles=["officer"],
            ),
            ClientCreate(
                client_id="bench-app",
                name="A web app",
                grant_types=["authorization_code", "refresh_token"],
                scopes=["openid", "profile", "pingtai"],
                redirect_uris=[REDIRECT_URI],
            ),
        ):
            _, secret = await clients_service.register_client(
                session=session, secret_key=SECRET, registration=registration
            )
            assert secret is not None
            secrets_by_client[str(registration.client_id)] = secret
        now = datetime.now(UTC)
        for _ in range(refresh_pool):
            token = new_opaque_token()
            refresh_tokens.append(token)
            session.add(
                RefreshToken(
                    id=secrets.token_hex(16),
                    token_hash=token_digest(token),
                    family_id=secrets.token_hex(16),
                    client_id="bench-app",
                    user_id=user.id,
                    org_id=None,
                    scope="openid profile pingtai",
                    auth_time=now,
                    amr=["pwd"],
                    access_jti=secrets.token_hex(16),
                    access_expires_at=now + timedelta(minutes=5),
                    generation=0,
                    created_at=now,
                    expires_at=now + timedelta(days=30),
                )
            )
        await session.commit()
    await database.dispose()
    return secrets_by_client, refresh_tokens


WRK_SCRIPT = """
local body_prefix = "grant_type=%(grant)s"
local tokens = {}
local path = "%(path)s"
if "%(tokens)s" ~= "" then
  for line in io.lines("%(tokens)s") do tokens[#tokens + 1] = line end
end
local next_token = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = "%(auth)s"
request = function()
  local body = body_prefix
  if #tokens > 0 then
    -- Each request presents a token never used before; the pool outlasts the run.
    next_token = next_token + 1
    body = body .. "&refresh_token=" .. tokens[((next_token - 1) %% #tokens) + 1]
  end
  return wrk.format(nil, path, nil, body)
end
"""


def run_wrk(
    name: str,
    *,
    base: str,
    folder: Path,
    seconds: float,
    connections: int,
    grant: str,
    auth: str,
    tokens: list[str] | None = None,
) -> float:
    """POST ``grant`` to /oauth2/token with wrk for ``seconds``; print and return requests/s."""
    tokens_file = ""
    if tokens:
        tokens_path = folder / f"{grant}.tokens"
        tokens_path.write_text("\n".join(tokens) + "\n")
        tokens_file = str(tokens_path)
    script = folder / f"{grant}.lua"
    script.write_text(
        WRK_SCRIPT % {"grant": grant, "path": "/oauth2/token", "auth": auth, "tokens": tokens_file}
    )
    duration = max(1, round(seconds))
    output = subprocess.run(
        [
            "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--timeout", "10s", "--latency",
            "-s", str(script), f"{base}/oauth2/token",
        ],
        capture_output=True, text=True, check=True, timeout=duration + 60,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output)[1])  # type: ignore[index]
    total = int(re.search(r"(\d+) requests in", output)[1])  # type: ignore[index]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = int(bad[1]) if bad else 0
    socket = re.search(r"Socket errors: (.*)", output)
    latency = re.search(r"Latency\s+(\S+)", output)
    p99 = re.search(r"99%\s+(\S+)", output)
    print(
        f"{name:<36} {total:>7} in {duration:5.1f}s = {rate:8.1f}/s  ({errors} errors"
        f"{'; socket ' + socket[1] if socket else ''}; mean {latency[1] if latency else '?'}, "
        f"p99 {p99[1] if p99 else '?'})",
        flush=True,
    )
    return rate


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


async def run_stage(
    name: str,
    *,
    seconds: float,
    workers: int,
    make: Callable[[int], Awaitable[Callable[[], Awaitable[None]]]],
) -> float:
    """Run ``workers`` loops of one operation for ``seconds``; print and return ops/s."""
    operations = [await make(i) for i in range(workers)]
    done = 0
    errors = 0
    deadline = time.monotonic() + seconds

    async def loop(operation: Callable[[], Awaitable[None]]) -> None:
        nonlocal done, errors
        while time.monotonic() < deadline:
            try:
                await operation()
                done += 1
            except AssertionError:
                errors += 1

    started = time.monotonic()
    await asyncio.gather(*(loop(op) for op in operations))
    took = time.monotonic() - started
    rate = done / took
    print(f"{name:<36} {done:>7} in {took:5.1f}s = {rate:8.1f}/s  ({errors} errors)", flush=True)
    return rate


async def _asgi_post(app: Any, body: bytes, authorization: str) -> None:
    """POST ``body`` to /oauth2/token through ASGI; assert a 200."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"authorization", authorization.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/oauth2/token", "raw_path": b"/oauth2/token",
        "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8001), "state": {},
    }  # fmt: skip
    await app(scope, receive, send)
    assert sent and sent[0]["status"] == 200, sent


async def cpu_per_request(
    url: str, *, auth: dict[str, str], tokens: list[str], alg: str, folder: Path
) -> None:
    """Print the CPU time one client-credentials grant and one refresh take in the app."""
    from services.identity.app import create_app
    from services.identity.settings import IdentitySettings

    settings = IdentitySettings(
        env="development",
        secret_key=SECRET,
        database_url=url,
        gateway_url="http://127.0.0.1:8000",
        var_dir=str(folder),
        log_level="ERROR",
        oauth_access_token_alg=alg,
    )
    app = create_app(settings)
    count = len(tokens)
    async with app.router.lifespan_context(app):
        for _ in range(200):  # warm caches and the statement cache
            await _asgi_post(app, b"grant_type=client_credentials", auth["cc"])
        started = time.process_time()
        for _ in range(count):
            await _asgi_post(app, b"grant_type=client_credentials", auth["cc"])
        middle = time.process_time()
        for token in tokens:
            body = f"grant_type=refresh_token&refresh_token={token}".encode()
            await _asgi_post(app, body, auth["refresh"])
        ended = time.process_time()
    grant_us = 1e6 * (middle - started) / count
    refresh_us = 1e6 * (ended - middle) / count
    print(
        f"CPU per request, in process (ASGI, one at a time, {count} each): "
        f"client credentials {grant_us:.0f} µs, refresh {refresh_us:.0f} µs",
        flush=True,
    )


async def _postgres_admin(url: str, statement: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the server of ``url``, outside a transaction."""
    base = make_url(url)
    admin = await asyncpg.connect(
        host=base.host, port=base.port or 5432, user=base.username,
        password=base.password, database=base.database,
    )  # fmt: skip
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-identity-"))
    scratch: str | None = None
    if args.database_url:
        if not args.database_url.startswith("postgresql+asyncpg://"):
            raise SystemExit("--database-url must be a postgresql+asyncpg:// URL")
        scratch = f"pingtai_bench_{uuid.uuid4().hex[:12]}"
        await _postgres_admin(args.database_url, f'CREATE DATABASE "{scratch}"')
        url = (
            make_url(args.database_url).set(database=scratch).render_as_string(hide_password=False)
        )
        database_name = "PostgreSQL (asyncpg)"
    else:
        url = f"sqlite+aiosqlite:///{folder / 'identity.db'}"
        database_name = "SQLite"
    try:
        await run(args, folder=folder, url=url, database_name=database_name)
    finally:
        if scratch is not None:
            await _postgres_admin(
                args.database_url, f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'
            )


async def run(args: argparse.Namespace, *, folder: Path, url: str, database_name: str) -> None:
    await asyncio.to_thread(migrate, "services.identity", url)
    cpu_count = args.cpu_requests if "cpu" in args.stages else 0
    client_secrets, pool = await seed(url, refresh_pool=args.refresh_pool + cpu_count)
    pool, cpu_pool = pool[cpu_count:], pool[:cpu_count]
    if cpu_pool:
        await cpu_per_request(
            url,
            auth={
                "cc": basic("bench-system", client_secrets["bench-system"]),
                "refresh": basic("bench-app", client_secrets["bench-app"]),
            },
            tokens=cpu_pool,
            alg=args.alg,
            folder=folder,
        )
    use_wrk = args.generator == "wrk" or (args.generator == "auto" and shutil.which("wrk"))
    if args.generator == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PINGTAI_ENV": "development",
        "PINGTAI_SECRET_KEY": SECRET,
        "PINGTAI_GATEWAY_URL": base,
        "PINGTAI_LOG_LEVEL": "WARNING",
        "PINGTAI_VAR_DIR": str(folder),
        "PINGTAI_IDENTITY_DATABASE_URL": url,
        "PINGTAI_IDENTITY_OAUTH_ACCESS_TOKEN_ALG": args.alg,
        "PINGTAI_IDENTITY_OAUTH_IP_MAX_FAILURES": "1000000",
    }
    log = (folder / "identity.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "uvicorn", "services.identity.app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--no-access-log", "--log-level", "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    try:
        async with aiohttp.ClientSession(base, connector=connector) as http:
            for _ in range(200):
                try:
                    async with http.get("/readyz") as answer:
                        if answer.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
            print(
                f"identity at {base}: uvicorn, 1 worker, {database_name}; "
                f"access tokens {args.alg}; "
                f"argon2id m={passwords.ARGON2_MEMORY_KIB} KiB t={passwords.ARGON2_TIME_COST} "
                f"p={passwords.ARGON2_PARALLELISM}; {args.concurrency} in flight; "
                f"{os.cpu_count()} CPUs"
            )
            if use_wrk:
                print("load generator: wrk (1 thread, Lua script for the form bodies)")
            else:
                why = "as asked" if args.generator == "python" else "wrk is not installed"
                print(f"load generator: aiohttp in the benchmark's own process ({why})")
            print("load generator for sign-ins: aiohttp (cookies and the HTML form)")
            system_auth = basic("bench-system", client_secrets["bench-system"])
            app_auth = basic("bench-app", client_secrets["bench-app"])

            async def client_credentials(_: int) -> Callable[[], Awaitable[None]]:
                async def grant() -> None:
                    async with http.post(
                        "/oauth2/token",
                        data={"grant_type": "client_credentials"},
                        headers={"Authorization": system_auth},
                    ) as answer:
                        assert answer.status == 200, await answer.text()
                        await answer.read()

                return grant

            await run_stage("warm-up", seconds=1, workers=args.concurrency, make=client_credentials)
            if "cc" in args.stages and use_wrk:
                await asyncio.to_thread(
                    run_wrk,
                    "client-credentials grants",
                    base=base,
                    folder=folder,
                    seconds=args.seconds,
                    connections=args.concurrency,
                    grant="client_credentials",
                    auth=system_auth,
                )
            elif "cc" in args.stages:
                await run_stage(
                    "client-credentials grants",
                    seconds=args.seconds,
                    workers=args.concurrency,
                    make=client_credentials,
                )

            # Refresh: every request presents a token not used before, from the pool.
            if "refresh" in args.stages and use_wrk:
                await asyncio.to_thread(
                    run_wrk,
                    "refresh grants (rotation)",
                    base=base,
                    folder=folder,
                    seconds=args.seconds,
                    connections=args.concurrency,
                    grant="refresh_token",
                    auth=app_auth,
                    tokens=pool,
                )
            elif "refresh" in args.stages:
                unused = iter(pool)

                async def refresh(_: int) -> Callable[[], Awaitable[None]]:
                    async def once() -> None:
                        async with http.post(
                            "/oauth2/token",
                            data={"grant_type": "refresh_token", "refresh_token": next(unused)},
                            headers={"Authorization": app_auth},
                        ) as answer:
                            assert answer.status == 200, await answer.text()
                            await answer.read()

                    return once

                await run_stage(
                    "refresh grants (rotation)",
                    seconds=args.seconds,
                    workers=args.concurrency,
                    make=refresh,
                )

            async def sign_in(worker: int) -> Callable[[], Awaitable[None]]:
                jar = aiohttp.CookieJar(unsafe=True)
                browser = aiohttp.ClientSession(base, cookie_jar=jar, connector=connector,
                                                connector_owner=False)  # fmt: skip
                browsers.append(browser)

                async def once() -> None:
                    verifier = secrets.token_urlsafe(48)
                    challenge = (
                        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                        .rstrip(b"=")
                        .decode()
                    )
                    query = urlencode(
                        {
                            "response_type": "code",
                            "client_id": "bench-app",
                            "redirect_uri": REDIRECT_URI,
                            "scope": "openid profile pingtai",
                            "code_challenge": challenge,
                            "code_challenge_method": "S256",
                            "prompt": "login",
                            "state": str(worker),
                        }
                    )
                    async with browser.get(f"/oauth2/authorize?{query}") as page:
                        html = await page.text()
                    fields = {m["name"]: unescape(m["value"]) for m in INPUT.finditer(html)}
                    async with browser.post(
                        "/oauth2/authorize/signin",
                        data={**fields, "username": PHONE, "password": PASSWORD},
                        allow_redirects=False,
                    ) as answer:
                        assert answer.status == 303, await answer.text()
                        location = answer.headers["Location"]
                    assert "code=" in location

                return once

            browsers: list[aiohttp.ClientSession] = []
            if "signin" in args.stages:
                await run_stage(
                    "password sign-ins (form post + 303)",
                    seconds=args.seconds,
                    workers=args.concurrency,
                    make=sign_in,
                )
            for browser in browsers:
                await browser.close()
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
        print(f"server log: {folder / 'identity.log'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--refresh-pool", type=int, default=30_000)
    parser.add_argument("--generator", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--alg", choices=["ES256", "RS256"], default="ES256")
    parser.add_argument(
        "--stages",
        type=lambda text: set(text.split(",")),
        default={"cpu", "cc", "refresh", "signin"},
        help="which stages to run, comma-separated: cpu,cc,refresh,signin (default: all)",
    )
    parser.add_argument("--cpu-requests", type=int, default=3000)
    parser.add_argument(
        "--database-url",
        default="",
        help="a postgresql+asyncpg:// URL to connect to; a scratch database is created on its "
        "server and dropped at the end (default: a SQLite file)",
    )
    asyncio.run(main(parser.parse_args()))
