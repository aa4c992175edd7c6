"""Benchmark: the identity service's OpenID provider, one uvicorn process (1 worker, SQLite).

    .venv/bin/python bench/bench_identity.py [--seconds 8] [--concurrency 32] [--alg ES256]

Migrates a SQLite file in a temporary folder, seeds one person (argon2id with the production
parameters of services/identity/passwords.py) and three clients, then starts
``uvicorn services.identity.app:create_app`` as a separate process on a free 127.0.0.1 port.
This process is the load generator (aiohttp, ``--concurrency`` requests in flight). Stages, each
bounded by ``--seconds``:

1. client-credentials grants (client_secret_basic): POST /oauth2/token;
2. password sign-ins: GET /oauth2/authorize (prompt=login) and POST of the sign-in form, up to the
   303 with the code; the code is then exchanged (not counted) for a refresh token;
3. refresh-token grants with rotation: each worker walks its own family, one refresh at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libs.common.database import Database
from libs.common.migrations import migrate
from pingtai.natsserver import free_port
from services.identity import passwords
from services.identity.oauth.clients import service as clients_service
from services.identity.oauth.clients.schemas import ClientCreate
from services.identity.organisations.models import Membership
from services.identity.people.models import User

SECRET = "bench-identity-secret-0123456789abcdef0123456789"
PASSWORD = "Bench-password-42"
PHONE = "13800000001"
REDIRECT_URI = "https://bench.example.cn/callback"
INPUT = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')


async def seed(url: str) -> dict[str, str]:
    database = Database(url)
    secrets_by_client: dict[str, str] = {}
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
        await session.commit()
    await database.dispose()
    return secrets_by_client


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


async def main(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-identity-"))
    url = f"sqlite+aiosqlite:///{folder / 'identity.db'}"
    await asyncio.to_thread(migrate, "services.identity", url)
    client_secrets = await seed(url)
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
                f"identity at {base}: uvicorn, 1 worker, SQLite; access tokens {args.alg}; "
                f"argon2id m={passwords.ARGON2_MEMORY_KIB} KiB t={passwords.ARGON2_TIME_COST} "
                f"p={passwords.ARGON2_PARALLELISM}; {args.concurrency} in flight; "
                f"{os.cpu_count()} CPUs"
            )
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
            await run_stage(
                "client-credentials grants",
                seconds=args.seconds,
                workers=args.concurrency,
                make=client_credentials,
            )

            refresh_tokens: list[str] = []

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
                    if len(refresh_tokens) < args.concurrency:
                        code = parse_qs(urlsplit(location).query)["code"][0]
                        async with http.post(
                            "/oauth2/token",
                            data={
                                "grant_type": "authorization_code",
                                "code": code,
                                "redirect_uri": REDIRECT_URI,
                                "code_verifier": verifier,
                            },
                            headers={"Authorization": app_auth},
                        ) as exchanged:
                            assert exchanged.status == 200, await exchanged.text()
                            refresh_tokens.append((await exchanged.json())["refresh_token"])

                return once

            browsers: list[aiohttp.ClientSession] = []
            await run_stage(
                "password sign-ins (form post + 303)",
                seconds=args.seconds,
                workers=args.concurrency,
                make=sign_in,
            )
            for browser in browsers:
                await browser.close()

            async def refresh(worker: int) -> Callable[[], Awaitable[None]]:
                current = [refresh_tokens[worker % len(refresh_tokens)]]

                async def once() -> None:
                    async with http.post(
                        "/oauth2/token",
                        data={"grant_type": "refresh_token", "refresh_token": current[0]},
                        headers={"Authorization": app_auth},
                    ) as answer:
                        assert answer.status == 200, await answer.text()
                        current[0] = (await answer.json())["refresh_token"]

                return once

            await run_stage(
                "refresh grants (rotation)",
                seconds=args.seconds,
                workers=min(args.refresh_concurrency, len(refresh_tokens)),
                make=refresh,
            )
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
        print(f"server log: {folder / 'identity.log'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--refresh-concurrency", type=int, default=32)
    parser.add_argument("--alg", choices=["ES256", "RS256"], default="ES256")
    asyncio.run(main(parser.parse_args()))
