"""The overlays render, pass the Kubernetes schemas, and follow our rules for every container."""

from __future__ import annotations

import subprocess

import pytest

from pingtai.parts import PARTS
from tests.deploy.manifests import (
    KUBERNETES_VALIDATE,
    KUBERNETES_VERSION,
    VARIANTS,
    Obj,
    named,
    objects,
    of_kind,
    pod_templates,
    render,
    selector_matches,
)

# Custom resources have no schema in kubernetes-validate; tests/deploy/test_postgres.py checks
# the fields we rely on instead.
CUSTOM_KINDS = {"Cluster", "Database", "ScheduledBackup", "ObjectStore"}
PART_NAMES = [p.name for p in PARTS]


def validate(stream: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBERNETES_VALIDATE), "--strict", "--quiet", "-k", KUBERNETES_VERSION, "-"],
        input=stream,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("overlay", VARIANTS)
def test_every_object_passes_the_strict_kubernetes_schema(overlay: str) -> None:
    done = validate(render(overlay))
    report = (done.stdout + done.stderr).strip().splitlines()
    errors = [line for line in report if not line.startswith("WARN")]
    assert done.returncode == 0 and not errors, "\n".join(report)
    unknown = {line.split("for kind ")[1].split()[0] for line in report if "for kind " in line}
    assert unknown <= CUSTOM_KINDS, f"objects validated against no schema: {unknown}"


def test_the_validator_rejects_a_misspelled_field() -> None:
    """The check above is not vacuous: --strict catches a typo kustomize lets through."""
    done = validate(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
        "spec: {replica: 2, selector: {matchLabels: {a: b}},"
        " template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: i}]}}}\n"
    )
    assert done.returncode != 0
    assert "replica" in done.stdout + done.stderr


@pytest.mark.parametrize("overlay", VARIANTS)
def test_every_part_has_its_server_service_budget_policy_and_migration(overlay: str) -> None:
    for part in PARTS:
        deployment = named(overlay, "Deployment", part.name)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["serve", part.name]
        (port,) = container["ports"]
        assert port == {"name": "http", "containerPort": part.port(), "protocol": "TCP"}

        service = named(overlay, "Service", part.name)
        assert service["spec"]["ports"][0]["port"] == part.port()
        named(overlay, "PodDisruptionBudget", part.name)
        named(overlay, "NetworkPolicy", part.name)

        job = named(overlay, "Job", f"{part.name}-migrate")
        (migrate,) = job["spec"]["template"]["spec"]["containers"]
        assert migrate["args"] == ["migrate", part.name]
        assert migrate["image"] == container["image"], "migrations run the image they prepare"
        assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    (ingress,) = of_kind(overlay, "Ingress")
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"]["service"] == {"name": "gateway", "port": {"name": "http"}}


@pytest.mark.parametrize("overlay", VARIANTS)
def test_every_container_has_requests_and_limits(overlay: str) -> None:
    for pod in pod_templates(overlay):
        for container in pod.containers:
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert resource in resources.get(kind, {}), (
                        f"{pod.owner} {container['name']}: no {kind}.{resource}"
                    )


@pytest.mark.parametrize("overlay", VARIANTS)
def test_every_long_running_container_has_all_three_probes(overlay: str) -> None:
    for obj in objects(overlay):
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in container, f"{obj['metadata']['name']}: no {probe}"


@pytest.mark.parametrize("overlay", VARIANTS)
def test_parts_probe_healthz_and_readyz_and_shut_down_gracefully(overlay: str) -> None:
    for part in PARTS:
        spec = named(overlay, "Deployment", part.name)["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        # The readiness check itself waits up to 2 s per dependency (libs/common/health.py).
        assert container["readinessProbe"]["timeoutSeconds"] > 2
        pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        # uvicorn drains for up to 10 s after the preStop delay (libs/common/serve.py).
        assert spec["terminationGracePeriodSeconds"] >= pre_stop + 10


def _run_as_non_root(pod: Obj, container: Obj) -> bool:
    for context in (container.get("securityContext", {}), pod.get("securityContext", {})):
        if "runAsNonRoot" in context:
            return bool(context["runAsNonRoot"])
    return False


@pytest.mark.parametrize("overlay", VARIANTS)
def test_every_container_is_non_root_unprivileged_and_read_only(overlay: str) -> None:
    for pod in pod_templates(overlay):
        if not pod.spec:  # CloudNativePG's pods: the operator sets their security context
            continue
        assert pod.spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod.spec.get("automountServiceAccountToken") is False, pod.owner
        writable = {v["name"] for v in pod.spec.get("volumes", []) if "emptyDir" in v}
        for container in pod.containers:
            where = f"{pod.owner} {container['name']}"
            context = container.get("securityContext", {})
            assert _run_as_non_root(pod.spec, container), f"{where}: may run as root"
            user = context.get("runAsUser", pod.spec["securityContext"].get("runAsUser"))
            assert isinstance(user, int) and user > 0, f"{where}: runAsUser {user!r}"
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("privileged", False) is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not context.get("capabilities", {}).get("add"), where
            if pod.labels.get("app.kubernetes.io/name") in PART_NAMES:
                mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
                assert mounts.get("/tmp") in writable, f"{where}: /tmp is not an emptyDir"
                assert mounts.get("/app/var") in writable, f"{where}: var is not an emptyDir"


@pytest.mark.parametrize("overlay", VARIANTS)
def test_every_object_carries_the_recommended_labels(overlay: str) -> None:
    for obj in objects(overlay):
        labels = obj["metadata"].get("labels", {})
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert labels.get("app.kubernetes.io/part-of") == "pingtai", where
        assert labels.get("app.kubernetes.io/managed-by") == "kustomize", where
        assert labels.get("app.kubernetes.io/name"), where
        assert labels.get("app.kubernetes.io/component"), where
    for pod in pod_templates(overlay):
        for key in ("name", "component", "part-of"):
            assert pod.labels.get(f"app.kubernetes.io/{key}"), f"{pod.owner}: no {key} label"


@pytest.mark.parametrize("overlay", VARIANTS)
def test_every_selector_matches_some_pods(overlay: str) -> None:
    pods = pod_templates(overlay)

    def matched(selector: Obj, what: str) -> list[Obj]:
        found = [p for p in pods if selector_matches(selector, p.labels)]
        assert found, f"{overlay}: {what} selects no pod"
        return found

    for obj in objects(overlay):
        kind, name, spec = obj["kind"], obj["metadata"]["name"], obj.get("spec", {})
        where = f"{kind}/{name}"
        if kind == "Service":
            for pod in matched({"matchLabels": spec["selector"]}, where):
                ports = {p["name"] for c in pod.containers for p in c.get("ports", [])}
                for port in spec["ports"]:
                    assert port["targetPort"] in ports, f"{where}: {pod.owner} has no port"
        elif kind == "PodDisruptionBudget":
            matched(spec["selector"], where)
        elif kind in ("Deployment", "StatefulSet"):
            labels = spec["template"]["metadata"]["labels"]
            assert selector_matches(spec["selector"], labels), where
            for constraint in spec["template"]["spec"].get("topologySpreadConstraints", []):
                assert selector_matches(constraint["labelSelector"], labels), where
        elif kind == "HorizontalPodAutoscaler":
            target = spec["scaleTargetRef"]
            named(overlay, target["kind"], target["name"])
        elif kind == "NetworkPolicy":
            matched(spec["podSelector"], where)
            for rule in [*spec.get("ingress", []), *spec.get("egress", [])]:
                for peer in rule.get("from", rule.get("to", [])):
                    if "podSelector" in peer and "namespaceSelector" not in peer:
                        matched(peer["podSelector"], f"{where} peer {peer['podSelector']}")


def test_prod_runs_every_part_twice_or_more_with_autoscaling() -> None:
    for part in PARTS:
        assert named("prod", "Deployment", part.name)["spec"]["replicas"] >= 2
        hpa = named("prod", "HorizontalPodAutoscaler", part.name)
        assert hpa["spec"]["minReplicas"] >= 2
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
        pdb = named("prod", "PodDisruptionBudget", part.name)["spec"]
        # Two replicas and at most one down: a drain never takes a part away.
        assert pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable", 0) >= 1


def test_dev_runs_one_replica_of_everything_without_autoscaling() -> None:
    for part in PARTS:
        assert named("dev", "Deployment", part.name)["spec"]["replicas"] == 1
    assert of_kind("dev", "HorizontalPodAutoscaler") == []
    assert named("dev", "StatefulSet", "nats")["spec"]["replicas"] == 1
    assert named("dev", "StatefulSet", "postgresql")["spec"]["replicas"] == 1
    assert of_kind("dev", "Cluster") == []
