"""Benchmark: access-token verification in one process, RS256 and ES256.

    .venv/bin/python bench/bench_token_verify.py [--verifications 50000] [--repeat 3]

Signs tokens like the identity service's (RFC 9068 access tokens, about 700 bytes) with a fresh
RSA-2048 and a fresh P-256 key, serves their JWKS from an in-process httpx transport (fetched once,
not timed), and times, per algorithm, ``--verifications`` verifications in one loop:

1. the ceiling: the bare signature check (cryptography, through PyJWT's algorithm object);
2. ``jwt.decode`` with the same checks, PyJWT alone;
3. ``TokenVerifier.verify``, cold: the verified-token cache off, so every call parses, checks the
   signature and every claim (5,000 distinct tokens, cycled);
4. ``TokenVerifier.verify``, warm: 1,000 callers each presenting its token 50 times, as clients
   reuse an access token for its five minutes; the first sight of each token is a cold verify.

Each stage runs ``--repeat`` times; the median is reported with the range.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libs.common.auth import JwksCache, TokenVerifier

ISSUER = "https://pingtai.example"
AUDIENCE = "pingtai"
TARGET = 20_000
COLD_TOKENS = 5_000
WARM_CALLERS = 1_000


def claims(n: int) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"user-{n}",
        "client_id": "portal",
        "org": "330100-dept-health",
        "roles": ["officer", "citizen"],
        "acr": "2",
        "scope": "openid profile workflow.tasks exchange.read",
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 3600,
    }


def jwks_transport(keys: dict[str, Any]) -> httpx.MockTransport:
    document = {"keys": []}
    for kid, private in keys.items():
        algorithm = RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else ECAlgorithm
        jwk = json.loads(algorithm.to_jwk(private.public_key()))
        document["keys"].append({**jwk, "kid": kid, "use": "sig"})
    return httpx.MockTransport(lambda request: httpx.Response(200, json=document))


def verifier(transport: httpx.MockTransport, *, cache_size: int) -> TokenVerifier:
    client = httpx.AsyncClient(transport=transport)
    return TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks=JwksCache("http://jwks.test/jwks.json", client=client),
        cache_size=cache_size,
    )


async def rate(total: int, run: Callable[[], Awaitable[None]], repeat: int) -> list[float]:
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        await run()
        rates.append(total / (time.perf_counter() - started))
    return sorted(rates)


def report(name: str, rates: list[float], *, target: bool = False) -> float:
    median = statistics.median(rates)
    verdict = f"  {'meets' if median >= TARGET else 'BELOW'} {TARGET:,}/s" if target else ""
    print(f"  {name:<44} {median:>9,.0f} /s  (runs {rates[0]:,.0f}–{rates[-1]:,.0f}){verdict}")
    return median


async def bench(alg: str, private: Any, verifications: int, repeat: int) -> None:
    kid = f"{alg.lower()}-1"
    transport = jwks_transport({kid: private})
    headers = {"kid": kid, "typ": "at+jwt"}
    cold = [
        jwt.encode(claims(n), private, algorithm=alg, headers=headers) for n in range(COLD_TOKENS)
    ]
    rounds = max(1, verifications // COLD_TOKENS)
    total = rounds * COLD_TOKENS
    print(f"\n{alg}: {verifications:,} verifications per run, token {len(cold[0])} bytes")

    algorithm = jwt.get_algorithm_by_name(alg)
    public = private.public_key()
    signed = [
        (t.rsplit(".", 1)[0].encode(), jwt.utils.base64url_decode(t.rsplit(".", 1)[1]))
        for t in cold
    ]

    async def raw() -> None:
        for _ in range(rounds):
            for signing_input, signature in signed:
                if not algorithm.verify(signing_input, public, signature):
                    raise AssertionError("bad signature")

    report("signature only (the ceiling)", await rate(total, raw, repeat))

    decoder = jwt.PyJWT(options={"require": ["iss", "aud", "sub", "exp", "iat", "jti"]})

    async def pyjwt_decode() -> None:
        for _ in range(rounds):
            for token in cold:
                decoder.decode(token, public, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER)

    report("jwt.decode (PyJWT alone)", await rate(total, pyjwt_decode, repeat))

    uncached = verifier(transport, cache_size=0)
    await uncached.verify(cold[0])  # fetch the JWKS before the clock starts

    async def verify_cold() -> None:
        for _ in range(rounds):
            for token in cold:
                await uncached.verify(token)

    report(
        "TokenVerifier.verify, cold (no cache)", await rate(total, verify_cold, repeat), target=True
    )
    await uncached.aclose()

    callers = cold[:WARM_CALLERS]
    presentations = max(1, verifications // WARM_CALLERS)

    async def verify_warm() -> None:
        # A fresh verifier per run, so each run pays for its first sight of every token.
        cached = verifier(transport, cache_size=10_000)
        try:
            for _ in range(presentations):
                for token in callers:
                    await cached.verify(token)
        finally:
            await cached.aclose()

    name = f"TokenVerifier.verify, warm ({WARM_CALLERS:,} tokens x {presentations})"
    report(name, await rate(WARM_CALLERS * presentations, verify_warm, repeat), target=True)


async def main(verifications: int, repeat: int) -> None:
    # The JWKS fetch logs at INFO; keep the figures alone on stdout.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(f"Token verification in one process, median of {repeat} runs")
    await bench("RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048),
                verifications, repeat)  # fmt: skip
    await bench("ES256", ec.generate_private_key(ec.SECP256R1()), verifications, repeat)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--verifications", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.verifications, args.repeat))
