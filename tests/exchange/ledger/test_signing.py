"""The checkpoint key: a file in production, derived from the secret in development."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.exchange.ledger.setup import signer_from_settings, verification_keys_from_settings
from services.exchange.ledger.signing import LedgerKeyError, load_public_keys, public_pem
from services.exchange.settings import ExchangeSettings

SECRET = "a-real-secret-for-these-tests-0123456789"


def write_private(path: Path, key: Ed25519PrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_production_refuses_to_run_without_a_key_file() -> None:
    settings = ExchangeSettings(env="production", secret_key=SECRET)
    with pytest.raises(LedgerKeyError, match="LEDGER_SIGNING_KEY_FILE"):
        signer_from_settings(settings)


def test_production_signs_with_the_key_file(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    path = write_private(tmp_path / "ledger.pem", key)
    settings = ExchangeSettings(env="production", secret_key=SECRET, ledger_signing_key_file=path)
    assert signer_from_settings(settings).public_key == key.public_key()


def test_a_key_file_that_is_not_ed25519_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.pem"
    path.write_text("not a key")
    settings = ExchangeSettings(ledger_signing_key_file=path)
    with pytest.raises(LedgerKeyError, match="cannot read"):
        signer_from_settings(settings)


def test_development_derives_a_stable_key_from_the_secret() -> None:
    one = signer_from_settings(ExchangeSettings(env="development", secret_key=SECRET))
    two = signer_from_settings(ExchangeSettings(env="development", secret_key=SECRET))
    other = signer_from_settings(ExchangeSettings(env="development", secret_key=SECRET + "x"))
    assert one.key_id == two.key_id != other.key_id


def test_former_keys_are_trusted_from_a_pem_bundle(tmp_path: Path) -> None:
    old = [Ed25519PrivateKey.generate().public_key() for _ in range(2)]
    bundle = tmp_path / "former.pem"
    bundle.write_text("".join(public_pem(k) for k in old))
    assert load_public_keys(bundle) == old
    settings = ExchangeSettings(secret_key=SECRET, ledger_public_key_files=[bundle])
    keys = verification_keys_from_settings(settings)
    assert len(keys.by_id) == 3
