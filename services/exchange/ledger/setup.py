"""The ledger built from the exchange's settings, its keys, and its place in the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request

from libs.common.database import Database
from services.exchange.ledger.anomaly import AnomalyDetector
from services.exchange.ledger.signing import (
    CheckpointSigner,
    LedgerKeyError,
    VerificationKeys,
    derive_development_key,
    load_private_key,
    load_public_keys,
)
from services.exchange.ledger.writer import Ledger, LedgerConfig
from services.exchange.settings import ExchangeSettings


def signer_from_settings(settings: ExchangeSettings) -> CheckpointSigner:
    """The checkpoint key: the PEM file named by the settings, or in development one derived
    from the platform secret; production refuses to run without a file."""
    if settings.ledger_signing_key_file is not None:
        return CheckpointSigner(load_private_key(settings.ledger_signing_key_file))
    if settings.env == "production":
        raise LedgerKeyError(
            "PINGTAI_EXCHANGE_LEDGER_SIGNING_KEY_FILE must name an Ed25519 PEM key in production"
        )
    return CheckpointSigner(derive_development_key(settings.secret_key))


def verification_keys_from_settings(settings: ExchangeSettings) -> VerificationKeys:
    """The keys checkpoints are checked with: the current key and the former ones listed."""
    keys = [signer_from_settings(settings).public_key]
    for path in settings.ledger_public_key_files:
        keys.extend(load_public_keys(path))
    return VerificationKeys(keys)


def build_ledger(database: Database, settings: ExchangeSettings) -> Ledger:
    """A ledger (not started) writing to ``database`` as the settings say."""
    config = LedgerConfig(
        max_batch=settings.ledger_max_batch,
        max_pending=settings.ledger_max_pending,
        checkpoint_every=settings.ledger_checkpoint_every,
        checkpoint_interval_s=settings.ledger_checkpoint_interval_s,
        access_events=settings.ledger_access_events,
        commit_delay_s=settings.ledger_commit_delay_s,
        commit_siblings=settings.ledger_commit_siblings,
    )
    anomaly = AnomalyDetector(
        window_s=settings.ledger_anomaly_window_s,
        threshold=settings.ledger_anomaly_threshold,
        baseline_factor=settings.ledger_anomaly_baseline_factor,
    )
    return Ledger(database, signer=signer_from_settings(settings), config=config, anomaly=anomaly)


@asynccontextmanager
async def ledger_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the app's ledger (``app.state.ledger``) and its verification keys; drain at the end."""
    settings: ExchangeSettings = app.state.settings
    ledger = build_ledger(app.state.database, settings)
    app.state.ledger_keys = verification_keys_from_settings(settings)
    await ledger.start()
    app.state.ledger = ledger
    try:
        yield
    finally:
        await ledger.close()


async def _ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def _verification_keys(request: Request) -> VerificationKeys:
    keys: VerificationKeys = request.app.state.ledger_keys
    return keys


# The app's ledger: ``async def endpoint(ledger: LedgerDep)``.
LedgerDep = Annotated[Ledger, Depends(_ledger)]
VerificationKeysDep = Annotated[VerificationKeys, Depends(_verification_keys)]
