"""Where the gateway finds each part: explicit URLs, the JSON map, the parts' ports, defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import UPSTREAM_PARTS, GatewaySettings


def test_defaults_are_the_parts_default_ports() -> None:
    upstreams = GatewaySettings().upstreams
    assert upstreams == {
        "identity": "http://127.0.0.1:8001",
        "catalog": "http://127.0.0.1:8002",
        "exchange": "http://127.0.0.1:8003",
        "workflow": "http://127.0.0.1:8004",
        "evaluation": "http://127.0.0.1:8005",
        "portal": "http://127.0.0.1:8006",
    }


def test_a_part_s_port_variable_moves_its_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    # What `pingtai up --port-base 18000` does for every process.
    for offset, part in enumerate(UPSTREAM_PARTS, start=1):
        monkeypatch.setenv(f"PINGTAI_{part.upper()}_PORT", str(18000 + offset))
    monkeypatch.setenv("PINGTAI_GATEWAY_PORT", "18000")
    settings = GatewaySettings()
    assert settings.port == 18000
    assert settings.upstreams["identity"] == "http://127.0.0.1:18001"
    assert settings.upstreams["portal"] == "http://127.0.0.1:18006"


def test_explicit_urls_win_over_the_map_and_the_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGTAI_IDENTITY_PORT", "18001")
    monkeypatch.setenv("PINGTAI_CATALOG_PORT", "18002")
    monkeypatch.setenv(
        "PINGTAI_GATEWAY_UPSTREAMS",
        '{"identity": "http://identity:8001/", "catalog": "http://catalog.internal:80"}',
    )
    monkeypatch.setenv("PINGTAI_GATEWAY_CATALOG_URL", "https://catalog.example.gov.cn/base/")
    upstreams = GatewaySettings().upstreams
    assert upstreams["identity"] == "http://identity:8001"
    assert upstreams["catalog"] == "https://catalog.example.gov.cn/base"
    assert upstreams["exchange"] == "http://127.0.0.1:8003"


@pytest.mark.parametrize(
    "upstreams",
    [
        {"identiy": "http://127.0.0.1:8001"},  # a misspelt part
        {"identity": "ftp://127.0.0.1:8001"},
        {"identity": "127.0.0.1:8001"},
        {"identity": "http://127.0.0.1:8001/?x=1"},
    ],
)
def test_bad_upstreams_are_refused(upstreams: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(upstreams=upstreams)


def test_a_bad_port_variable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PINGTAI_WORKFLOW_PORT", "eighty")
    with pytest.raises(ValidationError, match="PINGTAI_WORKFLOW_PORT"):
        GatewaySettings()


def test_route_policies_are_checked_and_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.routes import RouteTable, default_routes, with_policies

    monkeypatch.setenv(
        "PINGTAI_GATEWAY_ROUTE_POLICIES",
        '{"/api/exchange": {"auth": "token"}, "/api/exchange/v1/open": {"auth": "anonymous"},'
        ' "": {"cors_origins": ["https://portal.example"]}}',
    )
    settings = GatewaySettings()
    table = RouteTable(with_policies(default_routes(), settings.route_policies))
    assert table.match("/api/exchange/v1/grants").policy.auth == "token"
    open_route = table.match("/api/exchange/v1/open/x")
    assert (open_route.policy.auth, open_route.target, open_route.mount) == (
        "anonymous",
        "exchange",
        "/api/exchange",
    )
    assert table.match("/").policy.cors_origins == ("https://portal.example",)
    for bad in ('{"/api/exchange/": {}}', '{"api": {}}', '{"/api/x": {"auth": "maybe"}}',
                '{"/api/exchange": {"limit": 1}}'):  # fmt: skip
        monkeypatch.setenv("PINGTAI_GATEWAY_ROUTE_POLICIES", bad)
        with pytest.raises(ValidationError):
            GatewaySettings()
    monkeypatch.setenv("PINGTAI_GATEWAY_ROUTE_POLICIES", '{"/v1/plans": {"auth": "token"}}')
    with pytest.raises(ValueError, match="not under a forwarded route"):
        with_policies(default_routes(), GatewaySettings().route_policies)


def test_the_gateway_reads_identity_s_keys_directly() -> None:
    settings = GatewaySettings(identity_url="http://identity:8001")
    assert settings.auth_jwks_url == "http://identity:8001/.well-known/jwks.json"
    explicit = GatewaySettings(auth_jwks_url="https://keys.example/jwks.json")
    assert explicit.auth_jwks_url == "https://keys.example/jwks.json"
