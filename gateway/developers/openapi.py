"""The platform's one OpenAPI document, merged from every part's own.

Each part's paths appear under the public prefix the gateway publishes them at (``/api/catalog``;
identity's ``/oauth2`` and ``/.well-known`` at the root, where the route table sends them). Each
part's components are renamed ``<part>.<Name>`` and every ``$ref`` follows, so two parts' ``Page``
or ``Problem`` never clash; operation ids become ``<part>_<id>`` and tags ``<part>/<tag>``. Two
security schemes stand for the whole platform: ``AccessToken`` (bearer JWT) and ``ApiKey``
(``X-API-Key``); each operation lists what its route's policy and the part ask for.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import structlog

from gateway.proxy import UpstreamPool
from gateway.routes import GATEWAY, RouteTable
from gateway.settings import SERVICE_PARTS, AuthMode

log = structlog.get_logger("pingtai.gateway.openapi")

Document = dict[str, Any]
FETCH_TIMEOUT = timedelta(seconds=3)
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
# Each part's operational endpoints are the operators' business, not the published API's.
SKIPPED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
SECURITY_SCHEMES: dict[str, Any] = {
    "AccessToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": (
            "An access token from the platform's identity service (/oauth2/token); "
            "client credentials for a system, authorization code + PKCE for a person."
        ),
    },
    "ApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An application's key (pt_live_...), issued at /v1/applications/{id}/keys.",
    },
}


def _rename_refs(node: Any, part: str) -> Any:
    """A copy of ``node`` whose local ``$ref``s point at the part's renamed components."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/"):
                _, _, kind, name = value.split("/", 3)
                out[key] = f"#/components/{kind}/{part}.{name}"
            elif key == "mapping" and isinstance(value, dict):  # a discriminator's
                out[key] = {k: _rename_refs({"$ref": v}, part)["$ref"] for k, v in value.items()}
            else:
                out[key] = _rename_refs(value, part)
        return out
    if isinstance(node, list):
        return [_rename_refs(item, part) for item in node]
    return node


def _public_path(part: str, path: str, table: RouteTable) -> str | None:
    """Where the gateway publishes ``part``'s ``path``, or None if it does not."""
    if path in SKIPPED_PATHS:
        return None
    if part == GATEWAY:
        return path
    # Unstripped routes first: identity's /oauth2/token is published as /oauth2/token.
    direct = table.match(path)
    if direct.target == part and not direct.strip_prefix:
        return path
    mount = f"/api/{part}"
    if table.match(mount).target == part:
        return f"{mount}{path}" if path != "/" else mount
    return None


def _is_bearer(scheme: Mapping[str, Any]) -> bool:
    return scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "bearer"


def _security(original: list[dict[str, list[str]]], auth: AuthMode) -> list[dict[str, list[str]]]:
    """The operation's requirements (platform scheme names) with the route's policy."""
    requirements = list(original)
    needs_token = auth in ("token", "key_and_token")
    needs_key = auth in ("key", "key_and_token")
    if needs_token:
        requirements = [r for r in requirements if "AccessToken" in r] or [{"AccessToken": []}]
    if not requirements:
        requirements = [{}]  # anonymous
    if needs_key:
        return [{**r, "ApiKey": []} for r in requirements]
    # A key is welcome everywhere: it names the application (and its plan's limits).
    return requirements + [{**r, "ApiKey": []} for r in requirements]


def merge_documents(
    own: Document, parts: Mapping[str, Document | None], table: RouteTable, *, version: str
) -> Document:
    """One document: the gateway's own API and every part's under its public prefix."""
    merged: Document = {
        "openapi": "3.1.0",
        "info": {
            "title": "Pingtai platform API",
            "version": version,
            "description": (
                "Every published API of the platform through its gateway: identity, catalog, "
                "exchange, workflow, evaluation and the gateway's own developer API. See "
                "/developers for the plans and how to get a key."
            ),
        },
        "servers": [{"url": "/"}],
        "paths": {},
        "components": {"securitySchemes": copy.deepcopy(SECURITY_SCHEMES)},
        "tags": [],
        "x-pingtai-parts": {},
    }
    paths: dict[str, Any] = merged["paths"]
    components: dict[str, dict[str, Any]] = merged["components"]
    tags: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for part, document in [(GATEWAY, own), *parts.items()]:
        merged["x-pingtai-parts"][part] = "available" if document is not None else "unavailable"
        if document is None:
            continue
        document = _rename_refs(document, part)
        schemes: dict[str, Any] = document.get("components", {}).get("securitySchemes", {})
        # A part's bearer scheme is the platform's AccessToken; any other keeps its (renamed) own.
        scheme_names = {
            name: "AccessToken" if _is_bearer(scheme) else f"{part}.{name}"
            for name, scheme in schemes.items()
        }
        for kind, entries in document.get("components", {}).items():
            for name, value in entries.items():
                if kind == "securitySchemes" and scheme_names[name] == "AccessToken":
                    continue
                components.setdefault(kind, {})[f"{part}.{name}"] = value
        for tag in document.get("tags", []):
            name = f"{part}/{tag['name']}"
            tags.setdefault(name, {**tag, "name": name})
        for path, item in document.get("paths", {}).items():
            public = _public_path(part, path, table)
            if public is None or public in paths:
                continue
            auth = table.match(public).policy.auth if part != GATEWAY else "anonymous"
            new_item: dict[str, Any] = {}
            for method, operation in item.items():
                if method not in HTTP_METHODS:
                    new_item[method] = operation
                    continue
                operation = dict(operation)
                if "operationId" in operation:
                    operation_id = f"{part}_{operation['operationId']}"
                    if operation_id in operation_ids:  # a part's own duplicate (one function
                        operation_id = f"{operation_id}_{method}"  # serving two methods)
                    operation_ids.add(operation_id)
                    operation["operationId"] = operation_id
                operation["tags"] = [f"{part}/{t}" for t in operation.get("tags", [])] or [part]
                for tag in operation["tags"]:
                    tags.setdefault(tag, {"name": tag})
                original = [
                    {scheme_names.get(name, name): scopes for name, scopes in requirement.items()}
                    for requirement in operation.get("security", [])
                ]
                operation["security"] = _security(original, auth)
                new_item[method] = operation
            paths[public] = new_item
    merged["tags"] = sorted(tags.values(), key=lambda t: str(t["name"]))
    return merged


class OpenApiAggregator:
    """Fetches each part's document (cached ``cache_s``; the last good one while a part is
    down) and merges them with the gateway's own."""

    def __init__(self, pool: UpstreamPool, table: RouteTable, *, cache_s: float) -> None:
        self.pool = pool
        self.table = table
        self.cache_s = cache_s
        self._documents: dict[str, tuple[float, Document | None]] = {}

    async def _fetch(self, part: str) -> Document | None:
        now = time.monotonic()
        cached = self._documents.get(part)
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        try:
            response = await self.pool.get(part, "/openapi.json", FETCH_TIMEOUT)
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            document: Document = await response.json()
        except Exception as exc:
            log.warning("openapi_fetch_failed", upstream=part, error=repr(exc))
            previous = cached[1] if cached is not None else None
            self._documents[part] = (now, previous)
            return previous
        self._documents[part] = (now, document)
        return document

    async def document(self, own: Document) -> Document:
        """The merged document now."""
        parts = [p for p in SERVICE_PARTS if p in self.pool.urls]
        fetched = await asyncio.gather(*(self._fetch(p) for p in parts))
        return merge_documents(
            own, dict(zip(parts, fetched, strict=True)), self.table, version=own["info"]["version"]
        )
