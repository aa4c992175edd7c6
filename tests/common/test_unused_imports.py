"""libs.common keeps nats, structlog, httpx and uvicorn from importing optional dependencies it
never uses (docs/operations.md, "Memory on one machine"), and leaves them importable for everyone
else."""

from __future__ import annotations

import json
import subprocess
import sys

_PROBE = """
import json, sys
import libs.common.app, libs.common.serve
import uvicorn.protocols.websockets.auto, uvicorn.supervisors
names = ("aiohttp", "rich", "pygments", "watchfiles", "websockets", "wsproto")
hidden = {name: name in sys.modules for name in names}
import aiohttp, rich.console, click, watchfiles, websockets
import nats.aio.transport, structlog.dev
print(json.dumps({
    "hidden_at_start": hidden,
    "imported_later": [m.__name__ for m in (aiohttp, rich.console, click, watchfiles, websockets)],
    "nats_websocket": nats.aio.transport.aiohttp is not None,
    "structlog_rich": structlog.dev.rich is not None,
    "uvicorn_websockets": uvicorn.protocols.websockets.auto.AutoWebSocketsProtocol is not None,
    "uvicorn_reload": uvicorn.supervisors.ChangeReload.__name__,
}))
"""


def test_a_part_process_does_not_load_the_unused_optional_dependencies() -> None:
    # A fresh interpreter: this test process has imported them already.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["hidden_at_start"] == {
        "aiohttp": False,
        "rich": False,
        "pygments": False,
        "watchfiles": False,
        "websockets": False,
        "wsproto": False,
    }
    later = ["aiohttp", "rich.console", "click", "watchfiles", "websockets"]
    assert seen["imported_later"] == later
    assert seen["nats_websocket"] is False
    assert seen["structlog_rich"] is False
    assert seen["uvicorn_websockets"] is False
    assert seen["uvicorn_reload"] == "StatReload"


_FASTAPI_PROBE = """
import json, sys
from services.catalog.app import create_app
from services.catalog.settings import CatalogSettings
app = create_app(CatalogSettings(database_url="sqlite+aiosqlite:///:memory:", nats_url=None,
                                 secret_key="unused-imports-test-0123456789abcdef"))
routes = len(app.openapi()["paths"])
loaded = "pydantic.v1" in sys.modules
from pydantic import v1
print(json.dumps({"routes": routes, "v1_loaded_by_fastapi": loaded, "v1": v1.__name__}))
"""


def test_fastapi_does_not_load_pydantic_v1_in_a_part_and_others_still_can() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FASTAPI_PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["routes"] > 10  # the app's routes (and their models) were really declared
    assert seen["v1_loaded_by_fastapi"] is False
    assert seen["v1"] == "pydantic.v1"
