"""Every PINGTAI_* variable in the manifests is a real setting, and each part gets what it needs.

The env names come from the settings classes themselves (their fields, env_prefix and aliases),
so a renamed setting fails here instead of being silently ignored in a cluster.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from libs.common.settings import PartSettings
from pingtai.parts import PARTS, Part
from tests.deploy.manifests import (
    ROOT,
    VARIANTS,
    app_part,
    base_name,
    container_env,
    named,
    objects,
    of_kind,
    overlay_of,
    pod_templates,
    referenced_secrets,
    settings_class,
    settings_env_names,
)

SHARED = {n for n in settings_env_names(PARTS[0]) if not n.startswith(PARTS[0].env_prefix)}
# Production's Secrets are created by the operator (docs/operations.md, "Secrets"), so the
# overlay does not ship them; the tests stand in for their values.
PROD_SECRET_STAND_INS = {
    ("pingtai-secrets", "PINGTAI_SECRET_KEY"): "a-real-secret-from-the-operator",
    ("pingtai-service-clients", "portal"): "the-portal-client-secret",
    ("pingtai-service-clients", "workflow"): "the-workflow-client-secret",
    **{(f"{p.name}-database", "password"): f"{p.name}-password" for p in PARTS},
    **{(f"{p.name}-database", "username"): p.name for p in PARTS},
}


def app_containers(overlay: str) -> list[tuple[Part, str, dict[str, str], dict[str, str]]]:
    """(part, owner, container, its environment) for every server and migration container."""
    found = []
    for pod in pod_templates(overlay):
        part = app_part(pod)
        if part is None:
            continue
        for container in pod.containers:
            env = container_env(overlay, container, PROD_SECRET_STAND_INS)
            found.append((part, pod.owner, container, env))
    return found


def test_shared_settings_are_read_from_unprefixed_names() -> None:
    """The helper below reads the classes right: shared fields use PINGTAI_<NAME>."""
    assert {"PINGTAI_ENV", "PINGTAI_NATS_URL", "PINGTAI_SECRET_KEY"} <= SHARED
    identity = settings_env_names(PARTS[0])
    assert {"PINGTAI_IDENTITY_DATABASE_URL", "PINGTAI_IDENTITY_EVENTS_REPLICAS"} <= identity
    assert "PINGTAI_IDENTITY_SECRET_KEY" not in identity


@pytest.mark.parametrize("overlay", VARIANTS)
def test_every_pingtai_variable_in_a_pod_is_a_setting_of_its_part(overlay: str) -> None:
    containers = app_containers(overlay)
    assert {part.name for part, *_ in containers} == {p.name for p in PARTS}
    for part, owner, _, env in containers:
        unknown = {k for k in env if k.startswith("PINGTAI_")} - settings_env_names(part)
        assert not unknown, f"{overlay} {owner}: not settings of {part.name}: {sorted(unknown)}"


@pytest.mark.parametrize("overlay", VARIANTS)
def test_every_pingtai_key_of_a_configmap_or_secret_is_a_setting_of_its_readers(
    overlay: str,
) -> None:
    readers: dict[str, set[str]] = {}
    for part, _, container, _ in app_containers(overlay):
        for source in container.get("envFrom", []):
            ref = source.get("configMapRef") or source.get("secretRef")
            readers.setdefault(ref["name"], set()).add(part.name)
        for entry in container.get("env", []):
            ref = entry.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                readers.setdefault(ref["name"], set()).add(part.name)
    for obj in [*of_kind(overlay, "ConfigMap"), *of_kind(overlay, "Secret")]:
        keys = {*obj.get("data", {}), *obj.get("stringData", {})}
        pingtai_keys = {k for k in keys if k.startswith("PINGTAI_")}
        if not pingtai_keys:
            continue
        name = obj["metadata"]["name"]
        assert name in readers, f"{overlay}: {name} holds settings no part reads"
        for part_name in readers[name]:
            part = next(p for p in PARTS if p.name == part_name)
            unknown = pingtai_keys - settings_env_names(part)
            assert not unknown, f"{overlay}: {name} keys not settings of {part_name}: {unknown}"


@pytest.mark.parametrize("overlay", VARIANTS)
def test_every_part_gets_its_required_settings_and_they_load(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for part, owner, container, env in app_containers(overlay):
        prefix = part.env_prefix
        where = f"{overlay} {owner}"
        for required in (f"{prefix}DATABASE_URL", "PINGTAI_NATS_URL", "PINGTAI_SECRET_KEY"):
            assert env.get(required), f"{where}: {required} is not provided"
        assert urlsplit(env[f"{prefix}DATABASE_URL"]).scheme == "postgresql+asyncpg", where
        assert env["PINGTAI_ENV"] == (
            "production" if overlay_of(overlay) == "prod" else "development"
        )

        # Load the part's settings class from exactly this environment.
        for name in [n for n in os.environ if n.startswith("PINGTAI_")]:
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings: PartSettings = settings_class(part)()  # type: ignore[assignment]
        assert settings.nats_url == env["PINGTAI_NATS_URL"]
        assert settings.database_url == env[f"{prefix}DATABASE_URL"]
        if "ports" in container:
            assert settings.host == "0.0.0.0", where
            assert settings.port == container["ports"][0]["containerPort"], where


@pytest.mark.parametrize("overlay", VARIANTS)
def test_urls_point_at_services_that_exist(overlay: str) -> None:
    services = {s["metadata"]["name"]: s for s in of_kind(overlay, "Service")}
    clusters = {f"{c['metadata']['name']}-rw" for c in of_kind(overlay, "Cluster")}

    def service_port(url: str) -> tuple[str, int]:
        parts = urlsplit(url)
        assert parts.hostname and parts.port, url
        return parts.hostname, parts.port

    for part, owner, _, env in app_containers(overlay):
        host, port = service_port(env["PINGTAI_NATS_URL"])
        assert port in [p["port"] for p in services[host]["spec"]["ports"]], owner
        database = urlsplit(env[f"{part.env_prefix}DATABASE_URL"])
        # Its own database, as its own role (one per part: postgres/dev, postgres/cnpg).
        assert (database.username, database.path) == (part.name, f"/{part.name}"), owner
        assert database.port == 5432
        assert database.hostname in clusters or (
            database.hostname in services
            and 5432 in [p["port"] for p in services[database.hostname]["spec"]["ports"]]
        ), f"{overlay} {owner}: no database service {database.hostname}"

    gateway = container_env(overlay, _server(overlay, "gateway"))
    for upstream in [p for p in PARTS if p.name != "gateway"]:
        host, port = service_port(gateway[f"PINGTAI_GATEWAY_{upstream.name.upper()}_URL"])
        assert (host, port) == (upstream.name, upstream.port())
        assert port in [p["port"] for p in services[host]["spec"]["ports"]]


def _server(overlay: str, part: str) -> dict[str, object]:
    (container,) = named(overlay, "Deployment", part)["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


@pytest.mark.parametrize("overlay", VARIANTS)
def test_stream_replicas_fit_the_nats_cluster(overlay: str) -> None:
    nats_nodes = named(overlay, "StatefulSet", "nats")["spec"]["replicas"]
    for part in PARTS:
        env = container_env(overlay, _server(overlay, part.name))
        replicas = int(env[f"{part.env_prefix}EVENTS_REPLICAS"])
        assert replicas <= nats_nodes
        if overlay_of(overlay) == "prod":
            assert (replicas, nats_nodes) == (3, 3), part.name


def test_prod_ships_no_secret_and_docs_name_every_one_it_needs() -> None:
    """Production's Secrets come from the operator; the docs list exactly the ones referenced."""
    assert of_kind("prod", "Secret") == []
    referenced = referenced_secrets("prod")
    expected = {"pingtai-secrets", "pingtai-service-clients", "pingtai-pg-backup-s3", "pingtai-tls"}
    expected |= {f"{p.name}-database" for p in PARTS}
    assert referenced == expected
    operations = (ROOT / "docs" / "operations.md").read_text()
    for name in sorted(referenced - {f"{p.name}-database" for p in PARTS}):
        assert f"`{name}`" in operations, f"docs/operations.md does not say how to make {name}"
    assert "`<part>-database`" in operations


def test_dev_ships_every_secret_it_references() -> None:
    shipped = {base_name(s["metadata"]["name"]) for s in of_kind("dev", "Secret")}
    referenced = {base_name(name) for name in referenced_secrets("dev")}
    assert referenced <= shipped, referenced - shipped
    assert all(o["kind"] != "Cluster" for o in objects("dev"))
