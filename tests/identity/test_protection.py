"""Identifiers at rest: the keyed lookup hash and the purpose-bound AES-GCM tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.identity.protection import IdentifierProtector, ProtectionError

SECRET = "test-secret-key-for-identity"
PURPOSE = "users.resident_id"
NUMBER = "11010519491231002X"


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def flip_bit(token: str, part: int, byte: int) -> str:
    parts = token.split(".")
    data = bytearray(b64decode(parts[part]))
    data[byte] ^= 0x01
    parts[part] = b64encode(bytes(data))
    return ".".join(parts)


@pytest.fixture
def protector() -> IdentifierProtector:
    return IdentifierProtector(SECRET)


def test_round_trip(protector: IdentifierProtector) -> None:
    for value in (NUMBER, "91350100M000100Y43", "张三丰", ""):
        token = protector.encrypt(value, PURPOSE)
        assert protector.decrypt(token, PURPOSE) == value
        assert value == "" or value not in token


def test_another_instance_with_the_same_secret_decrypts(protector: IdentifierProtector) -> None:
    token = protector.encrypt(NUMBER, PURPOSE)
    assert IdentifierProtector(SECRET).decrypt(token, PURPOSE) == NUMBER


def test_the_token_is_versioned_base64url_with_a_96_bit_nonce(
    protector: IdentifierProtector,
) -> None:
    version, nonce, sealed = protector.encrypt(NUMBER, PURPOSE).split(".")
    assert version == "v1"
    assert len(b64decode(nonce)) == 12
    assert len(b64decode(sealed)) == len(NUMBER) + 16  # the ciphertext and the GCM tag
    assert "=" not in nonce + sealed


def test_the_same_plaintext_encrypts_differently_each_time(protector: IdentifierProtector) -> None:
    tokens = {protector.encrypt(NUMBER, PURPOSE) for _ in range(50)}
    assert len(tokens) == 50
    assert len({token.split(".")[1] for token in tokens}) == 50


def test_a_flipped_bit_anywhere_is_detected(protector: IdentifierProtector) -> None:
    token = protector.encrypt(NUMBER, PURPOSE)
    sealed_length = len(b64decode(token.split(".")[2]))
    places = [(1, byte) for byte in range(12)] + [(2, byte) for byte in range(sealed_length)]
    for part, byte in places:  # the nonce, the ciphertext, and its last 16 bytes: the tag
        with pytest.raises(ProtectionError):
            protector.decrypt(flip_bit(token, part, byte), PURPOSE)


def test_a_token_is_bound_to_its_purpose(protector: IdentifierProtector) -> None:
    token = protector.encrypt(NUMBER, PURPOSE)
    with pytest.raises(ProtectionError, match="another purpose"):
        protector.decrypt(token, "organisations.credit_code")
    with pytest.raises(ValueError, match="purpose"):
        protector.encrypt(NUMBER, "")


def test_another_secret_cannot_decrypt(protector: IdentifierProtector) -> None:
    token = protector.encrypt(NUMBER, PURPOSE)
    with pytest.raises(ProtectionError):
        IdentifierProtector("another-secret").decrypt(token, PURPOSE)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "v1",
        "v1.abc",
        "v1.a.b.c",
        "v2.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAA",
        "v1.AAAA.AAAAAAAAAAAAAAAAAAAAAA",  # a nonce of 3 bytes
        "v1.AAAAAAAAAAAAAAAA.AAAA",  # shorter than a tag
        "v1.AAAAAAAAAAAAAAA!.AAAAAAAAAAAAAAAAAAAAAA",
        "v1.AAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAA+",
        "v1.A.AAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_malformed_tokens_are_refused(protector: IdentifierProtector, token: str) -> None:
    with pytest.raises(ProtectionError):
        protector.decrypt(token, PURPOSE)


def test_the_lookup_hash_is_stable_for_one_secret() -> None:
    first = IdentifierProtector(SECRET).lookup_hash(NUMBER)
    assert IdentifierProtector(SECRET).lookup_hash(NUMBER) == first
    assert len(first) == 64 and int(first, 16) >= 0


def test_the_lookup_hash_normalises_case_and_blanks(protector: IdentifierProtector) -> None:
    expected = protector.lookup_hash(NUMBER)
    assert protector.lookup_hash(NUMBER.lower()) == expected
    assert protector.lookup_hash(f" {NUMBER}\t") == expected
    assert protector.lookup_hash("１１０１０５１９４９１２３１００２ｘ") == expected
    assert protector.lookup_hash("11010519491231002Y") != expected


def test_different_secrets_give_different_hashes() -> None:
    hashes = {IdentifierProtector(f"secret-{n}").lookup_hash(NUMBER) for n in range(10)}
    assert len(hashes) == 10


def test_the_lookup_hash_is_keyed_not_a_plain_digest(protector: IdentifierProtector) -> None:
    # Without the key, hashing all 18-digit numbers of a birth year would reveal every one.
    assert protector.lookup_hash(NUMBER) != hashlib.sha256(NUMBER.encode()).hexdigest()


def test_the_keys_are_derived_with_hkdf_sha256_as_documented() -> None:
    # RFC 5869 by hand with the standard library, as an independent check of the derivation:
    # stored hashes depend on it never changing.
    prk = hmac.new(b"\0" * 32, SECRET.encode(), hashlib.sha256).digest()
    key = hmac.new(prk, b"pingtai identity lookup v1\x01", hashlib.sha256).digest()
    expected = hmac.new(key, NUMBER.encode(), hashlib.sha256).hexdigest()
    assert IdentifierProtector(SECRET).lookup_hash(NUMBER) == expected
    encryption_key = hmac.new(prk, b"pingtai identity encryption v1\x01", hashlib.sha256).digest()
    assert encryption_key != key
    # Tokens depend on the encryption key and the associated data never changing either.
    _, nonce, sealed = IdentifierProtector(SECRET).encrypt(NUMBER, PURPOSE).split(".")
    opened = AESGCM(encryption_key).decrypt(
        b64decode(nonce), b64decode(sealed), f"pingtai v1 {PURPOSE}".encode()
    )
    assert opened == NUMBER.encode()


def test_matches(protector: IdentifierProtector) -> None:
    stored = protector.lookup_hash(NUMBER)
    assert protector.matches(NUMBER.lower(), stored)
    assert not protector.matches("11010519491231002Y", stored)


def test_the_secret_is_required_and_never_shown() -> None:
    with pytest.raises(ValueError):
        IdentifierProtector("")
    assert SECRET not in repr(IdentifierProtector(SECRET))
