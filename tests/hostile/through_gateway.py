"""The platform behind its gateway, in process: every service served by uvicorn on a free port
(each in a thread with its own event loop), the gateway forwarding to them over real HTTP.

Schemathesis reads the gateway's merged ``/openapi.json`` and sends every request to the gateway
app in its own event loop (``Started``); the gateway's upstream client carries it to the part.
The services trust the tests' token issuer, as in ``parts.py``; the gateway checks the same
tokens at its edge. NATS is not started (events wait in each part's outbox) and the anonymous
limit is off (schemathesis' probes without a token come from one address).

``with_links`` adds OpenAPI links to the merged document at the test level (no part defines
any): from each create (a ``POST`` on a collection answering 201 with an ``id``) to every
operation on that collection's ``/{id}`` path and below, so schemathesis' state machine can
create, read back, update and act on the same resource.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import schemathesis
import uvicorn
from fastapi import FastAPI
from schemathesis.schemas import BaseSchema

from pingtai.natsserver import free_port
from tests.conftest import migrated
from tests.hostile.fuzzing import Started
from tests.hostile.parts import PARTS, SERVICES, build_app, trust_issuer
from tests.identity.conftest import Issuer

START_TIMEOUT_S = 60.0
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
_PARAMETER = re.compile(r"^\{([^}/]+)\}$")
ORG_FIELDS = frozenset({"owner_org_id", "department_org_id", "org_id", "provider_org_id"})


class Served:
    """A part's app served by uvicorn in a thread of its own (its own event loop)."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, lifespan="on", access_log=False,
            log_level="warning", loop="asyncio",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the part on port {self.port} did not start")
            time.sleep(0.02)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class Platform:
    """Every service served on its port and the gateway in front, started on first use."""

    def __init__(self, issuer: Issuer, database_url: Callable[[], str]) -> None:
        apps = {part: build_app(part, database_url(), issuer) for part in SERVICES}
        for app in apps.values():
            # Made once here, before the parts share this process's one GIL with each other and
            # schemathesis: the gateway gives each part 3 s to send its document.
            app.openapi()
        self.served = {part: Served(app) for part, app in apps.items()}
        upstreams = {part: served.url for part, served in self.served.items()}
        upstreams["portal"] = PARTS["gateway"].settings["upstreams"]["portal"]  # not fuzzed
        part = dataclasses.replace(
            PARTS["gateway"], settings={"upstreams": upstreams, "anonymous_per_minute": 0}
        )
        url = database_url()
        migrated(part.package, url)
        gateway = part.create(url)
        trust_issuer(gateway, issuer)
        self.gateway = Started(gateway)
        self.schema = schemathesis.openapi.from_asgi("/openapi.json", self.gateway)
        self.document: dict[str, Any] = self.schema.raw_schema
        missing = [p for p, s in self.document["x-pingtai-parts"].items() if s != "available"]
        assert not missing, f"the merged document lacks {missing}"
        self.results: dict[tuple[str, ...], Any] = {}

    def close(self) -> None:
        self.gateway.close()
        for served in self.served.values():
            served.close()


def owner(operation: dict[str, Any]) -> str:
    """The part an operation of the merged document belongs to (its id is ``<part>_<id>``)."""
    return str(operation["operationId"]).split("_", 1)[0]


def each_operation(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every operation in the document."""
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


def _resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        _, _, kind, name = node["$ref"].split("/", 3)
        node = document["components"][kind][name]
    return node


def _creates_with_id(document: dict[str, Any], operation: dict[str, Any]) -> bool:
    created = operation.get("responses", {}).get("201", {})
    schema = created.get("content", {}).get("application/json", {}).get("schema")
    return schema is not None and "id" in _resolve(document, schema).get("properties", {})


def with_links(
    document: dict[str, Any], *, org: str | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """A copy of ``document`` with a link from each create to the operations on what it made;
    and the (source, target) operation labels linked. With ``org``, every organisation field of
    a body (``ORG_FIELDS``) is pinned to it: the department the caller's token acts for, which
    generated data would otherwise never name (and every create would be a 422)."""
    linked = copy.deepcopy(document)
    if org is not None:
        for schema in linked["components"].get("schemas", {}).values():
            for name in ORG_FIELDS & set(schema.get("properties", {})):
                schema["properties"][name] = {"type": "string", "const": org}
    made: list[tuple[str, str]] = []
    operations = each_operation(linked)
    for method, path, operation in operations:
        if method != "post" or not _creates_with_id(linked, operation):
            continue
        for target_method, target_path, target in operations:
            if not target_path.startswith(f"{path}/"):
                continue
            parameter = _PARAMETER.match(target_path[len(path) + 1 :].split("/")[0])
            if parameter is None or "operationId" not in target:
                continue
            links = operation["responses"]["201"].setdefault("links", {})
            links[f"{target['operationId']}"] = {
                "operationId": target["operationId"],
                "parameters": {f"path.{parameter.group(1)}": "$response.body#/id"},
            }
            made.append((f"POST {path}", f"{target_method.upper()} {target_path}"))
    return linked, made


def linked_schemas(platform: Platform, *, org: str) -> dict[str, BaseSchema]:
    """Per create of the merged document: a schema of it and the operations it links to (the
    test-level links added, organisation fields pinned to ``org``), served by the gateway."""
    document, links = with_links(platform.document, org=org)
    ids = {f"{m.upper()} {path}": op["operationId"] for m, path, op in each_operation(document)}
    families: dict[str, set[str]] = {}
    for source, target in links:
        families.setdefault(source, {ids[source]}).add(ids[target])
    schemas = {}
    for source, family in families.items():
        schema = schemathesis.openapi.from_dict(document).include(operation_id=sorted(family))
        schema.app = platform.gateway
        schemas[source] = schema
    return schemas
