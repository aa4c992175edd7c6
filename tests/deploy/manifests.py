"""Render the kustomize overlays and look inside them: pods, containers, env, selectors."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from pingtai.parts import PARTS, Part

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
# Opt-in kustomize components (deploy/k8s/components/), each rendered on top of every overlay as
# "<overlay>+<component>": what an overlay that lists it under `components:` renders.
COMPONENTS = ("nats-store-encryption",)
VARIANTS = (*OVERLAYS, *(f"{o}+{c}" for o in OVERLAYS for c in COMPONENTS))
BIN = Path(sys.executable).parent
KUBECTL = BIN / "kubectl"
KUBERNETES_VALIDATE = BIN / "kubernetes-validate"
KUBERNETES_VERSION = "1.31.0"

Obj = dict[str, Any]
WORKLOADS = ("Deployment", "StatefulSet", "Job")


def overlay_of(variant: str) -> str:
    """``prod+nats-store-encryption`` -> ``prod``."""
    return variant.split("+")[0]


@cache
def render(overlay: str) -> str:
    """The overlay (or ``<overlay>+<component>...``) as kustomize renders it (YAML stream)."""
    name, *components = overlay.split("+")
    with tempfile.TemporaryDirectory() as scratch:
        root = K8S / "overlays" / name
        if components:
            # kustomize takes only relative paths, and a component needs a kustomization to join.
            def relative(path: Path) -> str:
                return os.path.relpath(path, scratch)

            lines = ["resources:", f"  - {relative(root)}", "components:"]
            lines += [f"  - {relative(K8S / 'components' / c)}" for c in components]
            root = Path(scratch)
            (root / "kustomization.yaml").write_text("\n".join(lines) + "\n")
        done = subprocess.run(
            [str(KUBECTL), "kustomize", str(root)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, f"kustomize {overlay} failed:\n{done.stderr}"
    assert done.stdout.strip(), f"kustomize {overlay} rendered nothing"
    return done.stdout


@cache
def objects(overlay: str) -> tuple[Obj, ...]:
    """The rendered overlay's objects."""
    return tuple(o for o in yaml.safe_load_all(render(overlay)) if o)


def of_kind(overlay: str, kind: str) -> list[Obj]:
    return [o for o in objects(overlay) if o["kind"] == kind]


def named(overlay: str, kind: str, name: str) -> Obj:
    found = [o for o in of_kind(overlay, kind) if o["metadata"]["name"] == name]
    assert len(found) == 1, f"{overlay}: expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def generated(overlay: str, kind: str, name: str) -> Obj:
    """A ConfigMap or Secret by the name before kustomize's hash suffix."""
    found = [o for o in of_kind(overlay, kind) if base_name(o["metadata"]["name"]) == name]
    assert len(found) == 1, f"{overlay}: expected one {kind} {name!r}, found {len(found)}"
    return found[0]


def base_name(name: str) -> str:
    """``identity-config-7hthc5mm87`` -> ``identity-config`` (kustomize's 10-character hash)."""
    return re.sub(r"-[a-z0-9]{10}$", "", name)


@dataclass(frozen=True)
class PodTemplate:
    """A pod template of a workload, or the pods an operator makes (CloudNativePG instances)."""

    owner: str  # "Deployment/identity"
    labels: Mapping[str, str]
    spec: Obj = field(default_factory=dict)

    @property
    def containers(self) -> list[Obj]:
        return [*self.spec.get("initContainers", []), *self.spec.get("containers", [])]


def pod_templates(overlay: str) -> list[PodTemplate]:
    """Every pod the overlay makes, with its labels."""
    pods = [
        PodTemplate(
            f"{o['kind']}/{o['metadata']['name']}",
            o["spec"]["template"]["metadata"].get("labels", {}),
            o["spec"]["template"]["spec"],
        )
        for o in objects(overlay)
        if o["kind"] in WORKLOADS
    ]
    for cluster in of_kind(overlay, "Cluster"):
        # CloudNativePG labels its instance pods with cnpg.io/cluster plus inheritedMetadata.
        labels = {
            **cluster["spec"].get("inheritedMetadata", {}).get("labels", {}),
            "cnpg.io/cluster": cluster["metadata"]["name"],
        }
        pods.append(PodTemplate(f"Cluster/{cluster['metadata']['name']}", labels))
    return pods


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics: matchLabels and matchExpressions."""
    if not all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        if operator == "In":
            ok = labels.get(key) in values
        elif operator == "NotIn":
            ok = labels.get(key) not in values
        elif operator == "Exists":
            ok = key in labels
        else:
            assert operator == "DoesNotExist", operator
            ok = key not in labels
        if not ok:
            return False
    return True


def app_part(pod: PodTemplate) -> Part | None:
    """The Pingtai part a pod runs (its server or its migration), or None for NATS, PostgreSQL."""
    name = pod.labels.get("app.kubernetes.io/name")
    return next((p for p in PARTS if p.name == name), None)


SecretLookup = Mapping[tuple[str, str], str]


def container_env(
    overlay: str, container: Obj, secret_value: SecretLookup | None = None
) -> dict[str, str]:
    """The environment a container starts with, as the kubelet builds it.

    envFrom first, then env in order, with ``$(VAR)`` expanded from what came before. Values of
    Secrets the overlay does not ship (production's) come from ``secret_value`` or a stand-in.
    """
    secret_value = secret_value or {}
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            cm = named(overlay, "ConfigMap", source["configMapRef"]["name"])
            env.update({k: str(v) for k, v in cm.get("data", {}).items()})
        else:
            env.update(_secret_data(overlay, source["secretRef"]["name"], secret_value))
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), str(entry["value"])
            )
        elif "secretKeyRef" in entry["valueFrom"]:
            ref = entry["valueFrom"]["secretKeyRef"]
            data = _secret_data(overlay, ref["name"], secret_value)
            env[entry["name"]] = data.get(ref["key"]) or secret_value.get(
                (base_name(ref["name"]), ref["key"]), f"stand-in-{ref['name']}-{ref['key']}"
            )
        elif "configMapKeyRef" in entry["valueFrom"]:
            ref = entry["valueFrom"]["configMapKeyRef"]
            env[entry["name"]] = str(named(overlay, "ConfigMap", ref["name"])["data"][ref["key"]])
        else:
            env[entry["name"]] = "from-the-downward-api"
    return env


def _secret_data(overlay: str, name: str, fallback: SecretLookup) -> dict[str, str]:
    found = [o for o in of_kind(overlay, "Secret") if o["metadata"]["name"] == name]
    if not found:
        return {key: value for (secret, key), value in fallback.items() if secret == name}
    secret = found[0]
    data = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
    data.update(secret.get("stringData", {}))
    return data


SECRET_REFERENCES = (
    "secretKeyRef",
    "secretRef",
    "passwordSecret",
    "accessKeyId",
    "secretAccessKey",
)


def referenced_secrets(overlay: str) -> set[str]:
    """Names of every Secret a pod or a CloudNativePG object refers to."""
    names: set[str] = set()

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("secretName"), str):  # secret volumes, Ingress TLS
                yield node["secretName"]
            for key, value in node.items():
                # Pods' env and envFrom; CloudNativePG roles; Barman Cloud's S3 credentials.
                if key in SECRET_REFERENCES and isinstance(value, dict) and "name" in value:
                    yield value["name"]
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for obj in objects(overlay):
        names.update(walk(obj.get("spec", {})))
    return names


def settings_class(part: Part) -> type[BaseSettings]:
    import importlib

    module = importlib.import_module(f"{part.package}.settings")
    cls: type[BaseSettings] = getattr(module, part.settings_class)
    return cls


def settings_env_names(part: Part) -> set[str]:
    """Every environment variable the part's settings class reads, upper-cased."""
    cls = settings_class(part)
    prefix = str(cls.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice).upper() for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{name}".upper())
    return names
