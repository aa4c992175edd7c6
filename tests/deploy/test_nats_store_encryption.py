"""NATS's store encrypted at rest in Kubernetes: the opt-in component, its Secret and its guard.

The guard (base/nats/check-store-key.sh, the nats pods' init container) is run here as the
cluster runs it, with ``sh``, on a store the real nats-server wrote with the rendered config.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from libs.common.events.streams import StreamLimits, stream_config
from libs.common.settings import PartSettings
from pingtai.natsserver import STORE_CIPHERS, STORE_KEY_CHECK, _key_digest, free_port
from pingtai.parts import PARTS
from tests.deploy.manifests import (
    OVERLAYS,
    ROOT,
    Obj,
    container_env,
    named,
    of_kind,
    settings_class,
)

COMPONENT = "nats-store-encryption"
ENCRYPTED = [f"{o}+{COMPONENT}" for o in OVERLAYS]
SECRET = "nats-store-key"
KEY_VARIABLE = "PINGTAI_NATS_STORE_KEY"
KEY = "nats-" + "0123456789abcdef" * 4
OTHER_KEY = "nats-" + "fedcba9876543210" * 4
NATS_SERVER = Path(sys.executable).parent / "nats-server"
MARKER = b"citizen-330106199001011234"


def _nats_pod(variant: str) -> tuple[Obj, Obj, Obj]:
    """The nats pod's spec, its guard (init container) and its server container."""
    spec = named(variant, "StatefulSet", "nats")["spec"]["template"]["spec"]
    (guard,) = spec["initContainers"]
    (server,) = spec["containers"]
    return spec, guard, server


def _store_files(variant: str) -> dict[str, str]:
    """What the nats pods find in /etc/nats: both ConfigMaps of its projected volume."""
    spec, _, _ = _nats_pod(variant)
    (config,) = [v for v in spec["volumes"] if v["name"] == "config"]
    files: dict[str, str] = {}
    for source in config["projected"]["sources"]:
        data = named(variant, "ConfigMap", source["configMap"]["name"])["data"]
        assert not set(files) & set(data), "two ConfigMaps give the same file"
        files.update(data)
    return files


def _secret_ref(container: Obj) -> Obj | None:
    entries = [e for e in container.get("env", []) if e["name"] == KEY_VARIABLE]
    if not entries:
        return None
    (entry,) = entries
    assert set(entry) == {"name", "valueFrom"}, "the key must come from the Secret, not a value"
    ref: Obj = entry["valueFrom"]["secretKeyRef"]
    return ref


@pytest.mark.parametrize("variant", ENCRYPTED)
def test_the_component_encrypts_the_store_with_the_key_from_a_secret(variant: str) -> None:
    _, guard, server = _nats_pod(variant)
    store_conf = _store_files(variant)["store.conf"]
    settings = dict(re.findall(r"^\s*(\w+):\s*(\S+)\s*$", store_conf, re.MULTILINE))
    assert settings.pop("cipher") in STORE_CIPHERS
    assert settings == {"key": f"${KEY_VARIABLE}"}, "the key is a variable, never a value"
    for container in (guard, server):
        assert _secret_ref(container) == {"name": SECRET, "key": KEY_VARIABLE}
        assert KEY_VARIABLE not in " ".join(
            [*container.get("command", []), *container.get("args", [])]
        )
    # Not shipped: the operator creates it (prod ships no Secret at all).
    assert not [s for s in of_kind(variant, "Secret") if s["metadata"]["name"].startswith(SECRET)]
    for config_map in of_kind(variant, "ConfigMap"):
        assert KEY_VARIABLE not in config_map.get("data", {}), config_map["metadata"]["name"]
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert f"`{SECRET}`" in operations and f"components/{COMPONENT}" in operations


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_by_default_the_store_is_plain_and_still_guarded(overlay: str) -> None:
    _, guard, server = _nats_pod(overlay)
    assert not re.search(r"^\s*(cipher|key):", _store_files(overlay)["store.conf"], re.MULTILINE)
    assert _secret_ref(guard) is None and _secret_ref(server) is None
    assert "PINGTAI_NATS_STORE_CIPHER" not in container_env(overlay, guard)
    for part in PARTS:
        env = container_env(overlay, _server_container(overlay, part.name))
        assert env.get("PINGTAI_NATS_STORE_CIPHER", "none") == "none", part.name


def _server_container(variant: str, part: str) -> Obj:
    (container,) = named(variant, "Deployment", part)["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


@pytest.mark.parametrize("variant", ENCRYPTED)
def test_the_parts_declare_their_streams_for_an_encrypted_store(
    variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, guard, _ = _nats_pod(variant)
    cipher = re.search(r"cipher:\s*(\w+)", _store_files(variant)["store.conf"])
    assert cipher
    # The cipher the server is given is the one the guard checks for and the parts are told.
    assert container_env(variant, guard)["PINGTAI_NATS_STORE_CIPHER"] == cipher.group(1)
    for part in PARTS:
        env = container_env(variant, _server_container(variant, part.name))
        assert env["PINGTAI_NATS_STORE_CIPHER"] == cipher.group(1), part.name
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        settings: PartSettings = settings_class(part)()  # type: ignore[assignment]
        limits = StreamLimits.from_settings(settings)
        assert limits.store_encrypted, part.name
        # No per-subject limit: it would set the encrypted store's blocks past 2 MB.
        assert stream_config(part=part.name, limits=limits).max_msgs_per_subject == -1


@pytest.mark.parametrize("variant", [*OVERLAYS, *ENCRYPTED])
def test_every_nats_node_checks_its_own_volume_before_it_starts(variant: str) -> None:
    spec, guard, server = _nats_pod(variant)
    assert guard["image"] == server["image"], "busybox's sh and sha256sum, as in the server's"
    assert guard["command"] == ["sh", "/etc/nats/check-store-key.sh", "/data"]
    assert "check-store-key.sh" in _store_files(variant)
    guard_mounts = {m["name"]: m["mountPath"] for m in guard["volumeMounts"]}
    server_mounts = {m["name"]: m["mountPath"] for m in server["volumeMounts"]}
    assert guard_mounts == {"config": "/etc/nats", "data": "/data"}
    assert server_mounts["data"] == "/data" and server_mounts["config"] == "/etc/nats"
    conf = _store_files(variant)["nats.conf"]
    assert re.search(r"store_dir:\s*/data\s", conf), "the guard looks at the store's volume"
    assert re.search(r"jetstream \{[^}]*include \./store\.conf[^}]*\}", conf)
    # The data volume is each node's own claim, so each node's guard checks its own store.
    assert "data" not in {v["name"] for v in spec["volumes"]}
    statefulset = named(variant, "StatefulSet", "nats")["spec"]
    assert statefulset["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


# The guard script, run as the init container runs it.


def _guard(
    tmp_path: Path, variant: str, key: str | None, data: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The rendered guard on ``data``, with the init container's env and ``key`` as the Secret's."""
    _, guard, _ = _nats_pod(variant)
    script = tmp_path / "check-store-key.sh"
    script.write_text(_store_files(variant)["check-store-key.sh"])
    env = {
        k: v
        for k, v in container_env(variant, guard, {(SECRET, KEY_VARIABLE): key or ""}).items()
        if key is not None or k != KEY_VARIABLE
    }
    return subprocess.run(
        ["sh", str(script), str(data or tmp_path / "data")],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def _check(data: Path) -> Path:
    return data / STORE_KEY_CHECK


def _encrypted_stream(data: Path) -> None:
    """What nats-server leaves in the store after it encrypted a stream."""
    stream = data / "jetstream" / "$G" / "streams" / "PINGTAI_WORKFLOW"
    stream.mkdir(parents=True)
    (stream / "meta.key").write_bytes(b"sealed")


def _volume(tmp_path: Path, encrypted_with: str | None = None) -> Path:
    """A node's volume: empty, or holding a store encrypted with ``encrypted_with``."""
    data = tmp_path / "data"
    data.mkdir()
    if encrypted_with is not None:
        _encrypted_stream(data)
        _check(data).write_text(_key_digest(encrypted_with) + "\n")
    return data


def test_the_guard_keeps_a_digest_of_the_key_on_the_first_start(tmp_path: Path) -> None:
    data = _volume(tmp_path)
    done = _guard(tmp_path, ENCRYPTED[0], KEY)
    assert done.returncode == 0, done.stderr
    # The same digest `pingtai up` keeps (pingtai/natsserver.py), so both agree on a store.
    assert _check(data).read_text() == _key_digest(KEY) + "\n"
    assert sorted(p.name for p in data.iterdir()) == [STORE_KEY_CHECK]


def test_the_guard_lets_the_same_key_start_again(tmp_path: Path) -> None:
    data = _volume(tmp_path, encrypted_with=KEY)
    done = _guard(tmp_path, ENCRYPTED[1], KEY)
    assert done.returncode == 0, done.stderr
    assert _check(data).read_text() == _key_digest(KEY) + "\n"


def test_the_guard_refuses_another_key(tmp_path: Path) -> None:
    data = _volume(tmp_path, encrypted_with=KEY)
    done = _guard(tmp_path, ENCRYPTED[0], OTHER_KEY)
    assert done.returncode != 0
    assert "encrypted with another key" in done.stderr
    assert _check(data).read_text() == _key_digest(KEY) + "\n", "the digest is kept"


@pytest.mark.parametrize("key", [None, ""])
def test_the_guard_refuses_a_missing_key(tmp_path: Path, key: str | None) -> None:
    (tmp_path / "data").mkdir()
    done = _guard(tmp_path, ENCRYPTED[0], key)
    assert done.returncode != 0
    assert f"{KEY_VARIABLE} is empty" in done.stderr
    assert not _check(tmp_path / "data").exists()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_guard_refuses_an_encrypted_store_without_the_component(
    tmp_path: Path, overlay: str
) -> None:
    """Dropping the component from an overlay would start the store with no key."""
    data = tmp_path / "data"
    data.mkdir()
    assert _guard(tmp_path, overlay, None).returncode == 0, "a plain store starts as before"
    _encrypted_stream(data)
    done = _guard(tmp_path, overlay, None)
    assert done.returncode != 0
    assert "is encrypted: start it with its key" in done.stderr


@pytest.mark.parametrize(
    "key",
    [
        "0123456789012345678901",  # all digits: nats-server reads a number
        "nats-0123456789#abcdef",  # "#" starts a comment: the key would be cut short
        "nats-0123456",  # too short
        "0nats-0123456789abcdef",  # not starting with a letter
        "nats-0123456789 abcdef",
        KEY + "\n",  # a Secret made with --from-file from a file ending in a newline
    ],
)
def test_the_guard_refuses_a_key_nats_server_would_misread(tmp_path: Path, key: str) -> None:
    (tmp_path / "data").mkdir()
    done = _guard(tmp_path, ENCRYPTED[0], key)
    assert done.returncode != 0
    assert "16 or more letters, digits, - and _, starting with a letter" in done.stderr
    assert not _check(tmp_path / "data").exists()


# The real server with the rendered configuration, then the guard on what it wrote.


def _nats_server(tmp_path: Path, variant: str, key: str) -> tuple[subprocess.Popen[bytes], str]:
    """nats-server started as the pod starts it, on local ports and ``tmp_path/data``."""
    port, monitor = free_port(), free_port()
    etc = tmp_path / "etc"
    etc.mkdir(exist_ok=True)
    for name, text in _store_files(variant).items():
        (etc / name).write_text(text)
    conf = (etc / "nats.conf").read_text()
    for old, new in (
        ("listen: 0.0.0.0:4222", f"listen: 127.0.0.1:{port}"),
        ("http_port: 8222", f"http: 127.0.0.1:{monitor}"),
        ("store_dir: /data", f"store_dir: {tmp_path / 'data'}"),
        ("pid_file: /var/run/nats/nats.pid", f"pid_file: {tmp_path / 'nats.pid'}"),
    ):
        assert old in conf
        conf = conf.replace(old, new)
    (etc / "nats.conf").write_text(conf)
    process = subprocess.Popen(
        [str(NATS_SERVER), "--config", str(etc / "nats.conf")],
        env={"SERVER_NAME": "nats-0", KEY_VARIABLE: key},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 15
    while True:
        assert process.poll() is None, "nats-server exited"
        try:
            url = f"http://127.0.0.1:{monitor}/healthz?js-enabled-only=true"
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return process, f"nats://127.0.0.1:{port}"
        except OSError:
            pass
        assert time.monotonic() < deadline, "nats-server not ready"
        time.sleep(0.05)


async def _serve(tmp_path: Path, variant: str, *, publish: bool) -> list[bytes]:
    """Start nats-server with ``KEY``, publish an event if asked, read the first one, stop it."""
    process, url = _nats_server(tmp_path, variant, KEY)
    try:
        client = await nats.connect(url)
        try:
            js = client.jetstream()
            if publish:
                config = StreamConfig(name="PINGTAI_TEST", subjects=["pingtai.test.>"])
                await js.add_stream(config)
                await js.publish("pingtai.test.thing.happened", MARKER)
            return [(await js.get_msg("PINGTAI_TEST", 1)).data or b""]
        finally:
            await client.close()
    finally:
        process.terminate()
        process.wait(timeout=15)


async def test_the_rendered_config_encrypts_the_store_and_the_guard_then_holds(
    tmp_path: Path,
) -> None:
    variant = f"dev+{COMPONENT}"  # one node: the cluster's routes would wait for peers
    _volume(tmp_path)
    assert _guard(tmp_path, variant, KEY).returncode == 0
    assert await _serve(tmp_path, variant, publish=True) == [MARKER]
    store = tmp_path / "data" / "jetstream"
    assert list(store.rglob("meta.key")), "the stream is encrypted"
    assert not any(MARKER in p.read_bytes() for p in store.rglob("*") if p.is_file())

    assert "another key" in _guard(tmp_path, variant, OTHER_KEY).stderr
    assert "start it with its key" in _guard(tmp_path, "dev", None).stderr
    assert _guard(tmp_path, variant, KEY).returncode == 0
    assert await _serve(tmp_path, variant, publish=False) == [MARKER]
