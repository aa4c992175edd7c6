"""Settings: the PINGTAI_ prefixes, shared values, per-part defaults, the production guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings
from libs.common.settings import PLACEHOLDER_SECRET, PartSettings
from portal.settings import PortalSettings
from services.catalog.settings import CatalogSettings
from services.evaluation.settings import EvaluationSettings
from services.exchange.settings import ExchangeSettings
from services.identity.settings import IdentitySettings
from services.workflow.settings import WorkflowSettings

DEFAULT_PORTS: list[tuple[type[PartSettings], int]] = [
    (GatewaySettings, 8000),
    (IdentitySettings, 8001),
    (CatalogSettings, 8002),
    (ExchangeSettings, 8003),
    (WorkflowSettings, 8004),
    (EvaluationSettings, 8005),
    (PortalSettings, 8006),
]


@pytest.mark.parametrize(("settings_class", "port"), DEFAULT_PORTS)
def test_each_part_has_its_default_port(settings_class: type[PartSettings], port: int) -> None:
    assert settings_class().port == port


@pytest.mark.parametrize(("settings_class", "port"), DEFAULT_PORTS)
def test_default_database_is_a_sqlite_file_named_after_the_part_under_the_var_dir(
    settings_class: type[PartSettings], port: int, tmp_path: Path
) -> None:
    settings = settings_class()
    expected = tmp_path / "var" / f"{settings_class.part}.db"
    assert settings.var_dir == tmp_path / "var"
    assert settings.database_url == f"sqlite+aiosqlite:///{expected}"


def test_a_part_reads_its_own_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGTAI_WORKFLOW_PORT", "9104")
    monkeypatch.setenv("PINGTAI_WORKFLOW_HOST", "0.0.0.0")
    monkeypatch.setenv("PINGTAI_WORKFLOW_DATABASE_URL", "postgresql+asyncpg://db/workflow")
    monkeypatch.setenv("PINGTAI_WORKFLOW_MAX_BODY_BYTES", "2048")
    workflow = WorkflowSettings()
    assert workflow.port == 9104
    assert workflow.host == "0.0.0.0"
    assert workflow.database_url == "postgresql+asyncpg://db/workflow"
    assert workflow.max_body_bytes == 2048
    # Another part's variables are not this part's.
    catalog = CatalogSettings()
    assert catalog.port == 8002
    assert catalog.host == "127.0.0.1"
    assert catalog.database_url.startswith("sqlite+aiosqlite:///")
    assert catalog.max_body_bytes == 10 * 1024 * 1024


def test_unprefixed_part_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGTAI_PORT", "9999")
    monkeypatch.setenv("PORT", "9998")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://elsewhere/db")
    settings = IdentitySettings()
    assert settings.port == 8001
    assert settings.database_url.startswith("sqlite+aiosqlite:///")


def test_shared_variables_reach_every_part(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PINGTAI_NATS_URL", "nats://nats.example:4222")
    monkeypatch.setenv("PINGTAI_VAR_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("PINGTAI_ENV", "development")
    monkeypatch.setenv("PINGTAI_LOG_LEVEL", "DEBUG")
    for settings_class, _ in DEFAULT_PORTS:
        settings = settings_class()
        assert settings.nats_url == "nats://nats.example:4222"
        assert settings.var_dir == tmp_path / "elsewhere"
        assert settings.env == "development"
        assert settings.log_level == "DEBUG"
        assert settings.database_url == (
            f"sqlite+aiosqlite:///{tmp_path / 'elsewhere' / f'{settings_class.part}.db'}"
        )


def test_shared_settings_ignore_unprefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # Names as common as ENV or SECRET_KEY belong to whatever else runs in the container.
    monkeypatch.setenv("ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "someone-elses-secret")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("NATS_URL", "nats://not-ours:4222")
    monkeypatch.setenv("VAR_DIR", "/not/ours")
    settings = ExchangeSettings()
    assert settings.env == "test"
    assert settings.secret_key == PLACEHOLDER_SECRET
    assert settings.log_level == "INFO"
    assert settings.nats_url is None
    assert str(settings.var_dir) != "/not/ours"


def test_settings_can_be_given_by_field_name() -> None:
    settings = GatewaySettings(env="development", nats_url="nats://x:4222", port=9000)
    assert settings.env == "development"
    assert settings.nats_url == "nats://x:4222"
    assert settings.port == 9000


def test_production_refuses_the_placeholder_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGTAI_ENV", "production")
    with pytest.raises(ValidationError, match="PINGTAI_SECRET_KEY"):
        IdentitySettings()
    with pytest.raises(ValidationError, match="PINGTAI_SECRET_KEY"):
        IdentitySettings(secret_key=PLACEHOLDER_SECRET)


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGTAI_ENV", "production")
    monkeypatch.setenv("PINGTAI_SECRET_KEY", "a-real-secret-from-a-kubernetes-secret")
    settings = IdentitySettings()
    assert settings.env == "production"
    assert settings.secret_key == "a-real-secret-from-a-kubernetes-secret"


@pytest.mark.parametrize("env", ["development", "test"])
def test_the_placeholder_secret_is_fine_outside_production(env: str) -> None:
    assert PortalSettings(env=env).secret_key == PLACEHOLDER_SECRET


def test_an_unknown_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGTAI_ENV", "staging")
    with pytest.raises(ValidationError):
        CatalogSettings()


def test_service_name_names_the_part() -> None:
    assert EvaluationSettings().service_name == "pingtai-evaluation"
