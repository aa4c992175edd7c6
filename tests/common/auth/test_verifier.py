"""TokenVerifier: what it accepts, what it refuses and why, against a real JWKS server."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from libs.common.auth import (
    InvalidToken,
    Principal,
    Role,
    TokenVerificationUnavailable,
)
from pingtai.natsserver import free_port
from tests.common.auth.conftest import ISSUER, MakeRig, SigningKey, claims, sign


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def refused(verify: Callable[[str], Awaitable[Principal]], token: str) -> str:
    """The detail of the InvalidToken that verifying ``token`` raises."""
    with pytest.raises(InvalidToken) as caught:
        await verify(token)
    assert caught.value.headers is not None
    assert caught.value.headers["WWW-Authenticate"].startswith(
        'Bearer realm="pingtai", error="invalid_token"'
    )
    return str(caught.value.detail)


async def test_a_valid_rs256_token_gives_its_principal(rig: MakeRig, rsa_key: SigningKey) -> None:
    r = rig()
    r.server.keys = [rsa_key]
    payload = claims(roles=["officer", "auditor", "no_such_role"], org="dept-7")

    principal = await r.verifier.verify(sign(rsa_key, payload))

    assert principal == Principal(
        sub="user-1",
        client_id="portal",
        org="dept-7",
        roles=frozenset({Role.OFFICER, Role.AUDITOR}),
        acr=2,
        scopes=frozenset({"openid", "workflow.tasks", "exchange.read"}),
        jti=payload["jti"],
        expires_at=datetime.fromtimestamp(payload["exp"], UTC),
    )
    assert principal.has_role(Role.OFFICER) and not principal.has_role(Role.CITIZEN)
    assert principal.has_scope("exchange.read") and not principal.has_scope("exchange.write")
    assert principal.acts_for("dept-7") and not principal.acts_for("dept-8")
    assert r.server.hits == 1


async def test_es256_an_audience_list_an_int_acr_and_no_person(
    rig: MakeRig, ec_key: SigningKey
) -> None:
    r = rig()
    r.server.keys = [ec_key]

    strong = await r.verifier.verify(sign(ec_key, claims(aud=["other", "pingtai"], acr=3)))
    machine = await r.verifier.verify(
        sign(ec_key, claims(acr=None, roles=None, scope=None, org=None, sub="client:tax"))
    )

    assert strong.acr == 3
    assert (machine.acr, machine.roles, machine.scopes, machine.org) == (
        0,
        frozenset(),
        frozenset(),
        None,
    )
    # The media type may be written in full and in any case (RFC 7515 §4.1.9).
    assert await r.verifier.verify(sign(ec_key, typ="application/AT+JWT"))


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": -120}, "expired"),
        ({"nbf": 120}, "not valid yet"),
        ({"iat": 120}, "not valid yet"),
        ({"iss": "https://evil.test"}, "another issuer"),
        ({"aud": "another-platform"}, "not issued for this platform"),
        ({"aud": ["a", "b"]}, "not issued for this platform"),
        ({"jti": None}, "lacks the 'jti' claim"),
        ({"client_id": None}, "lacks the 'client_id' claim"),
        ({"sub": None}, "lacks the 'sub' claim"),
        ({"exp": None}, "lacks the 'exp' claim"),
        ({"acr": "4"}, "'acr' is not an assurance level"),
        ({"acr": True}, "'acr' is not an assurance level"),
        ({"roles": "officer"}, "'roles' is not a list"),
        ({"scope": ["a"]}, "'scope' is not a string"),
        ({"org": 7}, "'client_id' or 'org' is not a string"),
    ],
)
async def test_bad_claims_are_refused_with_the_reason(
    rig: MakeRig, rsa_key: SigningKey, overrides: dict[str, Any], reason: str
) -> None:
    """Times in ``overrides`` are seconds from now, so collection time does not matter."""
    r = rig()
    r.server.keys = [rsa_key]
    now = int(time.time())
    for name in ("exp", "nbf", "iat"):
        if overrides.get(name) is not None:
            overrides = {**overrides, name: now + overrides[name]}
    assert reason in await refused(r.verifier.verify, sign(rsa_key, claims(**overrides)))


async def test_an_expired_token_within_the_leeway_passes(rig: MakeRig, rsa_key: SigningKey) -> None:
    r = rig(leeway_s=30)
    r.server.keys = [rsa_key]
    assert await r.verifier.verify(sign(rsa_key, claims(exp=int(time.time()) - 10)))


@pytest.mark.parametrize("typ", ["JWT", None, "at+jwt+extra", 1])
async def test_an_id_token_or_untyped_token_is_not_an_access_token(
    rig: MakeRig, rsa_key: SigningKey, typ: object
) -> None:
    r = rig()
    r.server.keys = [rsa_key]
    detail = await refused(r.verifier.verify, sign(rsa_key, typ=typ))
    assert "not an access token" in detail
    assert r.server.hits == 0  # refused before any key was fetched


async def test_alg_none_is_refused_before_any_fetch(rig: MakeRig, rsa_key: SigningKey) -> None:
    r = rig()
    r.server.keys = [rsa_key]
    header = _b64(json.dumps({"alg": "none", "kid": rsa_key.kid, "typ": "at+jwt"}).encode())
    token = f"{header}.{_b64(json.dumps(claims()).encode())}."

    assert "algorithm is not accepted" in await refused(r.verifier.verify, token)
    assert r.server.hits == 0


async def test_hs256_signed_with_the_public_key_is_refused(
    rig: MakeRig, rsa_key: SigningKey
) -> None:
    """Key confusion: an attacker signs with HMAC using the (public) RSA key as the secret."""
    r = rig()
    r.server.keys = [rsa_key]
    await r.verifier.verify(sign(rsa_key))  # the key is cached
    pem = rsa_key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk_secret = json.dumps(rsa_key.jwk()).encode()
    for secret in (pem, jwk_secret):
        header = _b64(json.dumps({"alg": "HS256", "kid": rsa_key.kid, "typ": "at+jwt"}).encode())
        body = _b64(json.dumps(claims(roles=["platform_admin"])).encode())
        mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        token = f"{header}.{body}.{_b64(mac)}"
        assert "algorithm is not accepted" in await refused(r.verifier.verify, token)


async def test_a_header_naming_another_algorithm_than_the_key_is_refused(
    rig: MakeRig, rsa_key: SigningKey, ec_key: SigningKey
) -> None:
    r = rig()
    r.server.keys = [rsa_key, ec_key]
    # Signed by the EC key but pointing at the RSA key's kid.
    token = sign(ec_key, kid=rsa_key.kid)
    assert "algorithm is not accepted" in await refused(r.verifier.verify, token)


async def test_a_tampered_payload_fails_the_signature(rig: MakeRig, ec_key: SigningKey) -> None:
    r = rig()
    r.server.keys = [ec_key]
    header, _, signature = sign(ec_key).split(".")
    forged = _b64(json.dumps(claims(roles=["platform_admin"])).encode())

    assert "signature does not verify" in await refused(
        r.verifier.verify, f"{header}.{forged}.{signature}"
    )


async def test_a_signature_from_another_key_with_a_known_kid_fails(
    rig: MakeRig, rsa_key: SigningKey
) -> None:
    r = rig()
    r.server.keys = [rsa_key]
    impostor = SigningKey.rsa(rsa_key.kid)
    assert "signature does not verify" in await refused(r.verifier.verify, sign(impostor))


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_a_short_rsa_key_is_not_accepted(rig: MakeRig) -> None:
    r = rig()
    weak = SigningKey.rsa("weak", bits=1024)
    r.server.keys = [weak]
    assert "signing key is not accepted" in await refused(r.verifier.verify, sign(weak))


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.b.c",
        f"{_b64(b'not json')}.e30.sig",
        f"{_b64(b'[1, 2]')}.e30.sig",
        f"{_b64(b'[' * 5000)}.e30.sig",
        f"{_b64(json.dumps({'alg': 'RS256', 'typ': 'at+jwt'}).encode())}.e30.sig",
        f"{_b64(json.dumps({'alg': 'RS256', 'typ': 'at+jwt', 'kid': 7}).encode())}.e30.sig",
        "x" * 9000,
    ],
)
async def test_malformed_tokens_are_invalid_tokens_never_crashes(
    rig: MakeRig, rsa_key: SigningKey, token: str
) -> None:
    r = rig()
    r.server.keys = [rsa_key]
    detail = await refused(r.verifier.verify, token)
    assert "malformed" in detail or "names no signing key" in detail


async def test_a_garbled_body_with_a_known_key_is_malformed(
    rig: MakeRig, rsa_key: SigningKey
) -> None:
    r = rig()
    r.server.keys = [rsa_key]
    header, _, signature = sign(rsa_key).split(".")
    assert "malformed" in await refused(r.verifier.verify, f"{header}.!!!!.{signature}")


async def test_an_unknown_kid_refetches_once_and_accepts_the_rotated_key(
    rig: MakeRig, rsa_key: SigningKey
) -> None:
    r = rig()
    r.server.keys = [rsa_key]
    await r.verifier.verify(sign(rsa_key))
    assert r.server.hits == 1

    # Identity rotates: the JWKS serves the new key beside the old one.
    new_key = SigningKey.ec("ec-2")
    r.server.keys = [rsa_key, new_key]
    r.monotonic.advance(31)
    principal = await r.verifier.verify(sign(new_key, claims(sub="user-2")))

    assert principal.sub == "user-2"
    assert r.server.hits == 2
    assert await r.verifier.verify(sign(rsa_key))  # the old key still works
    assert r.jwks.kids == {"rsa-1", "ec-2"}
    assert r.server.hits == 2


async def test_unknown_kids_within_the_floor_cost_one_fetch(
    rig: MakeRig, rsa_key: SigningKey
) -> None:
    r = rig(refetch_floor_s=30)
    r.server.keys = [rsa_key]
    await r.verifier.verify(sign(rsa_key))
    r.monotonic.advance(31)
    ghost = SigningKey.rsa("ghost")

    # Many at once, then more: one fetch serves them all.
    results = await asyncio.gather(
        *(r.verifier.verify(sign(ghost)) for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(e, InvalidToken) for e in results)
    assert "signing key is unknown" in await refused(r.verifier.verify, sign(ghost))
    r.monotonic.advance(29)
    assert "signing key is unknown" in await refused(r.verifier.verify, sign(ghost))
    assert r.server.hits == 2

    r.monotonic.advance(2)  # the floor has passed
    assert "signing key is unknown" in await refused(r.verifier.verify, sign(ghost))
    assert r.server.hits == 3


async def test_concurrent_requests_for_a_new_kid_share_one_fetch(
    rig: MakeRig, rsa_key: SigningKey
) -> None:
    r = rig(refetch_floor_s=0)  # no floor: only the single flight saves the JWKS
    r.server.keys = [rsa_key]
    await r.verifier.verify(sign(rsa_key))
    new_key = SigningKey.ec("ec-new")
    r.server.keys = [rsa_key, new_key]

    principals = await asyncio.gather(*(r.verifier.verify(sign(new_key)) for _ in range(20)))

    assert {p.sub for p in principals} == {"user-1"}
    assert r.server.hits == 2


async def test_a_key_removed_from_the_jwks_is_refused_after_the_max_age(
    rig: MakeRig, rsa_key: SigningKey
) -> None:
    r = rig(max_age_s=600)
    old_key, new_key = SigningKey.rsa("old"), rsa_key
    r.server.keys = [old_key, new_key]
    old_token = sign(old_key)
    await r.verifier.verify(old_token)

    # The old key is withdrawn; until the cached JWKS is old, its tokens still pass.
    r.server.keys = [new_key]
    r.monotonic.advance(599)
    assert await r.verifier.verify(old_token)
    assert r.server.hits == 1

    # Past the max age, the next request starts a refresh in the background and is served meanwhile.
    r.monotonic.advance(2)
    assert await r.verifier.verify(old_token)
    await r.jwks.wait_background_refresh()
    assert r.server.hits == 2
    assert r.jwks.kids == {new_key.kid}

    # Now the cached verdict is dropped and the old key is unknown; the floor spares the JWKS.
    assert "signing key is unknown" in await refused(r.verifier.verify, old_token)
    assert "signing key is unknown" in await refused(r.verifier.verify, sign(old_key))
    assert await r.verifier.verify(sign(new_key))
    assert r.server.hits == 2


async def test_a_denied_jti_is_refused_until_its_expiry(rig: MakeRig, ec_key: SigningKey) -> None:
    r = rig(leeway_s=30)
    r.server.keys = [ec_key]
    payload = claims()
    token = sign(ec_key, payload)
    principal = await r.verifier.verify(token)  # now cached as verified

    r.verifier.deny(payload["jti"], principal.expires_at)

    assert r.verifier.is_denied(payload["jti"])
    assert "revoked" in await refused(r.verifier.verify, token)
    # A token with the same jti that was never verified before is refused too.
    assert "revoked" in await refused(r.verifier.verify, sign(ec_key, payload, cty="x"))
    assert await r.verifier.verify(sign(ec_key))  # others pass

    # Once the token could not pass anyway, the entry is dropped.
    r.wall.now = principal.expires_at.timestamp() + 31
    assert not r.verifier.is_denied(payload["jti"])


async def test_the_denylist_purges_entries_whose_tokens_expired(rig: MakeRig) -> None:
    r = rig(leeway_s=0)
    past = datetime.fromtimestamp(r.wall.now, UTC) - timedelta(seconds=1)
    future = past + timedelta(hours=1)
    for i in range(1023):
        r.verifier.deny(f"old-{i}", past)
    r.verifier.deny("live", future)  # the 1024th triggers a purge

    assert r.verifier.is_denied("live")
    assert len(r.verifier._denied) == 1


async def test_a_cached_verdict_still_expires(rig: MakeRig, rsa_key: SigningKey) -> None:
    r = rig(leeway_s=30)
    r.server.keys = [rsa_key]
    payload = claims()
    token = sign(rsa_key, payload)
    await r.verifier.verify(token)

    r.wall.now = payload["exp"] + 29
    assert await r.verifier.verify(token)
    r.wall.now = payload["exp"] + 30
    assert "expired" in await refused(r.verifier.verify, token)


async def test_the_verified_cache_is_bounded(rig: MakeRig, rsa_key: SigningKey) -> None:
    r = rig(cache_size=3)
    r.server.keys = [rsa_key]
    tokens = [sign(rsa_key) for _ in range(5)]
    for token in tokens:
        await r.verifier.verify(token)
    assert list(r.verifier._verified) == tokens[2:]


async def test_no_keys_and_the_jwks_unreachable_is_unavailable(
    rig: MakeRig, rsa_key: SigningKey
) -> None:
    r = rig(url=f"http://127.0.0.1:{free_port()}/.well-known/jwks.json", refetch_floor_s=30)

    with pytest.raises(TokenVerificationUnavailable) as caught:
        await r.verifier.verify(sign(rsa_key))
    assert caught.value.status == 503
    assert caught.value.headers == {"Retry-After": "30"}

    r.monotonic.advance(20)
    with pytest.raises(TokenVerificationUnavailable) as caught:
        await r.verifier.verify(sign(rsa_key))
    assert caught.value.headers == {"Retry-After": "10"}
    assert r.jwks.fetches == 1  # the floor holds while the issuer is down


@pytest.mark.parametrize(
    "document",
    [{"keys": []}, {"nothing": 1}, [1, 2], {"keys": [{"kid": "k", "kty": "oct", "k": "c2VjcmV0"}]}],
)
async def test_a_jwks_with_no_usable_key_keeps_the_keys_held(
    rig: MakeRig, rsa_key: SigningKey, document: object
) -> None:
    r = rig()
    r.server.keys = [rsa_key]
    await r.verifier.verify(sign(rsa_key))

    r.server.keys, r.server.status = [], 500
    r.monotonic.advance(601)
    await r.verifier.verify(sign(rsa_key))
    await r.jwks.wait_background_refresh()
    assert r.jwks.kids == {rsa_key.kid}

    r.server.status, r.server.document = 200, document
    r.monotonic.advance(31)
    await r.jwks.refresh()
    assert r.jwks.kids == {rsa_key.kid}
    assert await r.verifier.verify(sign(rsa_key))


async def test_keys_for_other_uses_or_algorithms_are_skipped(
    rig: MakeRig, rsa_key: SigningKey
) -> None:
    r = rig()
    encryption = {**SigningKey.rsa("enc").jwk(), "use": "enc"}
    rs512 = {**SigningKey.rsa("rs512").jwk(), "alg": "RS512"}
    secret = {"kid": "oct", "kty": "oct", "k": _b64(b"shared-secret-shared-secret-32b!")}
    r.server.keys = [rsa_key]
    r.server.extra = [encryption, rs512, secret, {"kid": "broken", "kty": "RSA"}, "junk"]

    await r.verifier.verify(sign(rsa_key))

    assert r.jwks.kids == {rsa_key.kid}
    token = "{}.{}.{}".format(
        _b64(json.dumps({"alg": "HS256", "kid": "oct", "typ": "at+jwt"}).encode()),
        _b64(json.dumps(claims()).encode()),
        "sig",
    )
    assert "algorithm is not accepted" in await refused(r.verifier.verify, token)


async def test_verifying_from_settings_uses_the_gateway_jwks_by_default() -> None:
    from libs.common.auth import TokenVerifier
    from tests.common.conftest import SampleSettings

    default = TokenVerifier.from_settings(SampleSettings(gateway_url="http://gw.test:9000/"))
    custom = TokenVerifier.from_settings(
        SampleSettings(auth_jwks_url="http://identity:8001/jwks", issuer=ISSUER, audience="x")
    )
    try:
        assert default.jwks.url == "http://gw.test:9000/.well-known/jwks.json"
        assert default.issuer == "http://gw.test:9000"
        assert (custom.jwks.url, custom.issuer, custom.audience) == (
            "http://identity:8001/jwks",
            ISSUER,
            "x",
        )
    finally:
        await default.aclose()
        await custom.aclose()
