"""The verifier's fast path (cryptography directly) against PyJWT, on a corpus of valid tokens
and of mutations of them: the fast path accepts only what PyJWT accepts, with the same payload,
and the verifier gives the same verdict and reason with the fast path on and off."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt import PyJWK

from libs.common.auth import InvalidToken, JwksCache, TokenVerifier
from libs.common.auth.verifier import (
    ACCESS_TOKEN_TYPES,
    REQUIRED_CLAIMS,
    _Decline,
    _fast_decode,
)
from tests.common.auth.conftest import AUDIENCE, ISSUER, SigningKey, claims

LEEWAY = 30.0
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _raw(header: dict[str, Any], payload: object, key: SigningKey | None) -> str:
    """A token with exactly this header and payload (any JSON), signed by ``key`` if given."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if key is None:
        return f"{signing_input}.{_b64(b'not a signature')}"
    algorithm = jwt.get_algorithm_by_name(key.alg)
    signature = algorithm.sign(signing_input.encode(), key.private)
    return f"{signing_input}.{_b64(signature)}"


def _corpus(keys: list[SigningKey], impostor: SigningKey, rng: random.Random) -> list[str]:
    now = int(time.time())
    tokens: list[str] = []
    rsa_key = next(k for k in keys if k.alg == "RS256")
    pem = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for n in range(60):
        key = keys[n % len(keys)]
        other = keys[(n + 1) % len(keys)]
        variant: dict[str, Any] = rng.choice(
            [
                {},
                {"aud": [AUDIENCE, "other"]},
                {"acr": 3, "nbf": now - 100},
                {"org": None, "roles": [], "acr": None},
                {"exp": now - 10},  # expired, but within the leeway
            ]
        )
        body = claims(**variant)
        header = {"alg": key.alg, "kid": key.kid, "typ": rng.choice(["at+jwt", "AT+JWT"])}
        if n % 7 == 0:
            header["typ"] = "application/at+jwt"
        valid = _raw(header, body, key)
        tokens.append(valid)
        h, p, s = valid.split(".")
        # Bit flips in each segment, at the byte level and at the character level.
        for segment in range(3):
            parts = [h, p, s]
            raw = bytearray(_unb64(parts[segment]))
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            parts[segment] = _b64(bytes(raw))
            tokens.append(".".join(parts))
            parts = [h, p, s]
            position = rng.randrange(len(parts[segment]))
            character = rng.choice(ALPHABET.replace(parts[segment][position], ""))
            parts[segment] = parts[segment][:position] + character + parts[segment][position + 1 :]
            tokens.append(".".join(parts))
        # Padding added (PyJWT accepts it on a segment whose bytes stay the same).
        tokens += [f"{h}.{p}.{s}==", f"{h}=.{p}.{s}", f"{h}.{p}==.{s}", f"{h}.{p}.{s}="]
        # A non-canonical spelling of the signature: the same bytes, other unused bits.
        last = ALPHABET.index(s[-1])
        tokens.append(f"{h}.{p}.{s[:-1]}{ALPHABET[last ^ 1]}")
        # 2 and 4 segments, non-ASCII, whitespace.
        tokens += [f"{h}.{p}", f"{h}.{p}.{s}.{s}", f"{h}.{p}.{s}é", f"{h}.{p}é.{s}", f" {valid}"]
        tokens += [f"{h}.{p}.", f"..{s}", f"{h}.{p}.{s}\n"]
        # alg none; HS256 with the RSA public key as the secret (key confusion).
        none_header = _b64(json.dumps({**header, "alg": "none"}).encode())
        tokens += [f"{none_header}.{p}.", f"{none_header}.{p}.{s}"]
        hs_header = _b64(json.dumps({**header, "alg": "HS256", "kid": rsa_key.kid}).encode())
        mac = hmac.new(pem, f"{hs_header}.{p}".encode(), hashlib.sha256).digest()
        tokens.append(f"{hs_header}.{p}.{_b64(mac)}")
        # Swapped kid, another key's signature under this kid, header alg of the other key.
        tokens.append(_raw({**header, "kid": other.kid}, body, key))
        tokens.append(_raw({**header, "alg": other.alg}, body, key))
        tokens.append(_raw(header, body, SigningKey(key.kid, impostor.alg, impostor.private)))
        # Headers: wrong typ, crit, b64, kid of the wrong type, extra members.
        header_changes: list[dict[str, Any]] = [
            {"typ": "JWT"},
            {"typ": None},
            {"typ": "at+jwt+x"},
            {"crit": ["exp"], "exp": 1},
            {"crit": ["b64"], "b64": True},
            {"crit": []},
            {"b64": False},
            {"kid": 7},
            {"kid": ""},
            {"kid": None},
            {"alg": None},
            {"x5u": "https://evil.example/keys", "jku": "https://evil.example/jwks"},
        ]
        for changed in header_changes:
            changed_header = {k: v for k, v in {**header, **changed}.items() if v is not None}
            tokens.append(_raw(changed_header, body, key))
        # Claims: time, issuer, audience, required claims, types PyJWT coerces or refuses.
        claim_changes: list[dict[str, Any]] = [
            {"exp": now - 1000},
            {"nbf": now + 1000},
            {"iat": now + 1000},
            {"nbf": now + 10},
            {"iss": ISSUER + "/"},
            {"iss": [ISSUER]},
            {"aud": "other"},
            {"aud": ["other"]},
            {"aud": []},
            {"aud": ""},
            {"aud": [AUDIENCE, 7]},
            {"aud": {"a": AUDIENCE}},
            {"sub": 7},
            {"jti": 7},
            {"client_id": None},
            {"jti": None},
            {"exp": str(now + 1000)},
            {"exp": now + 1000.5},
            {"exp": "soon"},
            {"iat": True},
            {"nbf": "x"},
        ]
        for changed in claim_changes:
            tokens.append(_raw(header, claims(**{**body, **changed}), key))
        tokens.append(_raw(header, {k: v for k, v in body.items() if k != "iat"}, key))
        # Payloads that are not JSON objects.
        for payload in ([body], "text", 7, None):
            tokens.append(_raw(header, payload, key))
        tokens.append(f"{h}.{_b64(b'not json')}.{s}")
    return tokens


def _pyjwt_verdict(token: str, keys: dict[str, PyJWK]) -> dict[str, Any] | None:
    """What the verifier accepted before the fast path: its header checks, then jwt.decode."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    typ, kid = header.get("typ"), header.get("kid")
    if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
        return None
    if header.get("alg") not in {"RS256", "ES256"} or not isinstance(kid, str) or kid not in keys:
        return None
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            keys[kid],
            algorithms=["ES256", "RS256"],
            audience=AUDIENCE,
            issuer=ISSUER,
            leeway=LEEWAY,
            options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
        )
    except jwt.PyJWTError:
        return None
    return payload


def _fast_verdict(token: str, keys: dict[str, PyJWK]) -> dict[str, Any] | str | None:
    """The fast path's payload, "declined" or None (it refused the signature itself)."""
    try:
        kid = json.loads(_unb64(token.split(".")[0])).get("kid")
        key = keys[kid]
    except Exception:
        return "declined"
    try:
        return _fast_decode(
            token, key, issuer=ISSUER, audience=AUDIENCE, leeway=LEEWAY, now=time.time()
        )
    except _Decline:
        return "declined"
    except InvalidToken:
        return None


@pytest.fixture(scope="module")
def corpus() -> tuple[list[SigningKey], list[str]]:
    rng = random.Random(9068)
    keys = [SigningKey.rsa("rsa-1"), SigningKey.ec("ec-1"), SigningKey.ec("ec-2")]
    impostor_rsa = SigningKey.rsa("impostor")
    tokens = _corpus(keys, impostor_rsa, rng) + _corpus(keys, SigningKey.ec("impostor"), rng)
    return keys, tokens


def test_the_fast_path_accepts_exactly_what_pyjwt_accepts(
    corpus: tuple[list[SigningKey], list[str]],
) -> None:
    keys, tokens = corpus
    jwks = {k.kid: PyJWK(k.jwk()) for k in keys}
    assert len(tokens) > 1000
    accepted = declined_but_valid = 0
    for token in tokens:
        reference = _pyjwt_verdict(token, jwks)
        fast = _fast_verdict(token, jwks)
        if isinstance(fast, dict):
            # Never accepts what PyJWT refuses, and reads the same payload.
            assert fast == reference, token
            accepted += 1
        elif fast is None:
            # It refused the signature: PyJWT refuses the token too.
            assert reference is None, token
        elif reference is not None:
            # The kinds of token PyJWT accepts and the fast path leaves to it: padding, and a
            # crit or b64 header (the verifier's verdict on them is PyJWT's, tested below).
            header = json.loads(_unb64(token.split(".")[0].rstrip("=")))
            assert "=" in token or "crit" in header or "b64" in header, token
            declined_but_valid += 1
    assert accepted >= 240
    assert declined_but_valid >= 120


async def _verdicts(tokens: list[str], keys: list[SigningKey], *, fast: bool) -> list[object]:
    document = {"keys": [k.jwk() for k in keys]}
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=document))
    )
    verifier = TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks=JwksCache("http://jwks.test/jwks.json", client=client),
        leeway_s=LEEWAY,
        cache_size=0,
        fast_path=fast,
    )
    verdicts: list[object] = []
    try:
        for token in tokens:
            try:
                verdicts.append(await verifier.verify(token))
            except InvalidToken as exc:
                verdicts.append(exc.detail)
    finally:
        await verifier.aclose()
        await client.aclose()
    return verdicts


async def test_the_verifier_gives_the_same_verdicts_and_reasons_with_and_without_it(
    corpus: tuple[list[SigningKey], list[str]],
) -> None:
    keys, tokens = corpus
    with_fast_path = await _verdicts(tokens, keys, fast=True)
    pyjwt_only = await _verdicts(tokens, keys, fast=False)
    for token, fast, slow in zip(tokens, with_fast_path, pyjwt_only, strict=True):
        assert fast == slow, token
    assert sum(not isinstance(v, str) for v in pyjwt_only) >= 360
