"""The NetworkPolicies allow exactly the paths the design uses, inside the namespace.

A small evaluator of NetworkPolicy semantics: traffic from pod A to pod B on a port passes when
A's egress allows it (or no policy selects A for egress) and B's ingress allows it (likewise).
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from pingtai.parts import PARTS
from tests.deploy.manifests import OVERLAYS, Obj, PodTemplate, of_kind, pod_templates
from tests.deploy.manifests import selector_matches as matches

SERVICES = [p for p in PARTS if p.name not in ("gateway", "portal")]
PORTAL = next(p for p in PARTS if p.name == "portal")
GATEWAY = next(p for p in PARTS if p.name == "gateway")


def _pod(overlay: str, **labels: str) -> PodTemplate:
    full = {f"app.kubernetes.io/{k.replace('_', '-')}": v for k, v in labels.items()}
    found = [
        p for p in pod_templates(overlay) if all(p.labels.get(k) == v for k, v in full.items())
    ]
    assert found, f"{overlay}: no pod with {labels}"
    return found[0]


def _named_ports(pod: PodTemplate) -> Mapping[str, int]:
    ports = {p["name"]: p["containerPort"] for c in pod.containers for p in c.get("ports", [])}
    if pod.owner.startswith("Cluster/"):
        ports["postgresql"] = 5432
    return ports


def _port_allowed(rule: Obj, destination: PodTemplate, port: int) -> bool:
    if "ports" not in rule:
        return True
    for allowed in rule["ports"]:
        value = allowed["port"]
        if value == port or _named_ports(destination).get(value) == port:
            return True
    return False


def _peer_allows(rule: Obj, direction: str, other: PodTemplate) -> bool:
    peers = rule.get(direction)
    if peers is None:
        return True
    for peer in peers:
        # Only same-namespace pod peers: namespaceSelector and ipBlock peers are other places.
        if "namespaceSelector" in peer or "ipBlock" in peer:
            continue
        if matches(peer["podSelector"], other.labels):
            return True
    return False


def _side_allows(
    policies: list[Obj],
    pod: PodTemplate,
    kind: str,
    other: PodTemplate,
    port_pod: PodTemplate,
    port: int,
) -> bool:
    selecting = [
        p
        for p in policies
        if kind in p["spec"]["policyTypes"] and matches(p["spec"]["podSelector"], pod.labels)
    ]
    if not selecting:
        return True
    key, direction = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    return any(
        _peer_allows(rule, direction, other) and _port_allowed(rule, port_pod, port)
        for policy in selecting
        for rule in policy["spec"].get(key, [])
    )


def allowed(overlay: str, source: PodTemplate, destination: PodTemplate, port: int) -> bool:
    policies = of_kind(overlay, "NetworkPolicy")
    return _side_allows(policies, source, "Egress", destination, destination, port) and (
        _side_allows(policies, destination, "Ingress", source, destination, port)
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_is_denied_unless_allowed(overlay: str) -> None:
    deny = [p for p in of_kind(overlay, "NetworkPolicy") if p["spec"]["podSelector"] == {}]
    covered = {t for p in deny for t in p["spec"]["policyTypes"]}
    assert covered == {"Ingress", "Egress"}
    dns = [
        rule
        for p in deny
        for rule in p["spec"].get("egress", [])
        if {"port": 53, "protocol": "UDP"} in rule.get("ports", [])
    ]
    assert dns, "no pod could resolve a name"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_designed_paths_are_open(overlay: str) -> None:
    gateway = _pod(overlay, name="gateway", component="server")
    nats = _pod(overlay, name="nats")
    postgresql = _pod(overlay, name="postgresql")
    for part in [*SERVICES, PORTAL]:
        server = _pod(overlay, name=part.name, component="server")
        assert allowed(overlay, gateway, server, part.port()), f"gateway -> {part.name}"
        # Service-to-service calls go through the gateway (DESIGN.md, "Independence").
        assert allowed(overlay, server, gateway, GATEWAY.port()), f"{part.name} -> gateway"
    for part in PARTS:
        server = _pod(overlay, name=part.name, component="server")
        migration = _pod(overlay, name=part.name, component="migration")
        assert allowed(overlay, server, nats, 4222), f"{part.name} -> NATS"
        assert allowed(overlay, server, postgresql, 5432), f"{part.name} -> PostgreSQL"
        assert allowed(overlay, migration, postgresql, 5432), f"{part.name} migration -> PostgreSQL"
    if of_kind(overlay, "StatefulSet") and nats.owner.startswith("StatefulSet/"):
        assert allowed(overlay, nats, nats, 6222), "NATS cluster routes"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_other_paths_are_closed(overlay: str) -> None:
    gateway = _pod(overlay, name="gateway", component="server")
    nats = _pod(overlay, name="nats")
    postgresql = _pod(overlay, name="postgresql")
    servers = {p.name: _pod(overlay, name=p.name, component="server") for p in PARTS}
    for caller in [*SERVICES, PORTAL]:
        for callee in [*SERVICES, PORTAL]:
            if caller != callee:
                # Straight to another part, around the gateway's authentication and limits.
                path = (servers[caller.name], servers[callee.name], callee.port())
                assert not allowed(overlay, *path), f"{caller.name} -> {callee.name}"
    for part in PARTS:
        migration = _pod(overlay, name=part.name, component="migration")
        assert not allowed(overlay, migration, nats, 4222), f"{part.name} migration -> NATS"
        assert not allowed(overlay, migration, gateway, 8000), f"{part.name} migration -> gateway"
    assert not allowed(overlay, nats, postgresql, 5432), "NATS -> PostgreSQL"
    assert not allowed(overlay, postgresql, nats, 4222), "PostgreSQL -> NATS"
    assert not allowed(overlay, nats, gateway, 8000), "NATS -> gateway"
