"""The authorisation matrix, executed in full: every row, every caller (docs/authorisation.md).

One test per row asks the row's endpoint as each of the 14 callers and compares every answer
with the table; a failure lists each cell that differs. Another test fails when a part's OpenAPI
document has an operation no row covers, so a new endpoint cannot slip past the matrix.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import MutableMapping
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from tests.authz.callers import CALLERS
from tests.authz.matrix import ROWS
from tests.authz.table import OK, Expected, Row
from tests.authz.worlds import World

pytestmark = pytest.mark.asyncio(loop_scope="package")

METHODS = {"get", "post", "put", "patch", "delete"}


def outcome(row: Row, status: int) -> Expected:
    """What an answer means for the matrix: allowed, or the refusal's status."""
    if (
        200 <= status < 400 or status == 409 or status in row.accepted
    ):  # 409: permitted, the resource's state says no
        return OK
    return status


async def first_status(app: FastAPI, method: str, url: str, headers: dict[str, str]) -> int:
    """The status of a server-sent event stream, which never ends by itself: the request is
    sent to the app directly and the client disconnects once the response has started."""
    path, _, query = url.partition("?")
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "server": ("workflow", 80), "client": ("127.0.0.1", 1),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    started: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await started
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start" and not started.done():
            started.set_result(message["status"])

    task = asyncio.create_task(app(scope, receive, send))
    waiting: set[asyncio.Future[Any]] = {task, started}
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    status = started.result() if started.done() else -1
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return status


async def ask(world: World, row: Row, caller: str) -> tuple[int, str]:
    """``caller``'s answer to ``row``: its status and the start of its body."""
    target = await world.target(row.target, fresh=row.fresh)
    url = row.path.format(**target)
    headers = world.as_(caller)
    if row.stream:
        return await first_status(world.app, row.method, url, headers), ""
    given = {**target, "ids": world.ids, "world": world, "caller": caller}
    kwargs: dict[str, Any] = {
        "params": dict(row.query(given) if callable(row.query) else row.query)
    }
    if row.body is not None:
        kwargs["json"] = row.body(given)
    if row.form is not None:
        kwargs["data"] = row.form(given)
    if row.content is not None:
        kwargs["content"] = row.content
        headers = {**headers, "Content-Type": row.content_type or "application/octet-stream"}
    response = await world.http.request(row.method, url, headers=headers, **kwargs)
    return response.status_code, response.text[:200]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
async def test_every_caller_gets_what_the_matrix_says(worlds: dict[str, World], row: Row) -> None:
    world = worlds[row.part]
    # Refused callers first: a wrongly allowed write then shows as such, not as a state change.
    order = sorted(CALLERS, key=lambda caller: row.expected(caller) == OK)
    wrong = []
    for caller in order:
        status, body = await ask(world, row, caller)
        assert status < 500 or status in row.accepted, f"{caller}: {status} {body}"
        expected = row.expected(caller)
        if outcome(row, status) != expected:
            wrong.append(f"{caller}: expected {expected}, got {status} {body}")
    assert not wrong, "\n".join(wrong)


def operations(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) of ``app``'s OpenAPI document and of its routes (those the
    document leaves out too: metrics, docs, pages); HEAD goes with GET."""
    document = app.openapi()
    found = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    for context in iter_route_contexts(app.routes):
        methods = getattr(context, "methods", None) or set()
        found |= {(method, context.path) for method in methods if method.lower() in METHODS}
    return found


async def test_every_operation_of_every_part_has_a_row(worlds: dict[str, World]) -> None:
    covered = {row.operation for row in ROWS}
    missing = sorted(
        (name, method, path)
        for name, world in worlds.items()
        for method, path in operations(world.app)
        if (name, method, path) not in covered
    )
    stale = sorted(
        row.operation
        for row in ROWS
        if (row.method, row.path) not in operations(worlds[row.part].app)
    )
    assert not missing, "operations without a row:\n" + json.dumps(missing, indent=1)
    assert not stale, "rows for operations no part has:\n" + json.dumps(stale, indent=1)
