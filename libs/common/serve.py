"""Run one part under uvicorn, as ``python -m services.<part>`` or ``pingtai serve <part>``."""

from __future__ import annotations

import os
from typing import Any

import uvicorn

from libs.common.settings import PartSettings


def server_options(settings: PartSettings) -> dict[str, Any]:
    """The uvicorn options every part runs with, whatever its number of workers."""
    return {
        "factory": True,
        "host": settings.host,
        "port": settings.port,
        # Our middleware logs each request once, in JSON; uvicorn's access log would double it.
        "access_log": False,
        "log_config": None,
        "proxy_headers": True,
        "forwarded_allow_ips": settings.forwarded_allow_ips,
        "timeout_graceful_shutdown": 10,
        "server_header": False,
    }


def serve(app_factory: str, settings: PartSettings) -> None:
    """Serve ``module:create_app`` on the part's host and port until SIGTERM or Ctrl-C.

    With ``settings.workers`` (``PINGTAI_<PART>_WORKERS``) above 1, uvicorn's supervisor binds
    the port once and starts that many worker processes, each importing ``app_factory`` and
    calling it (so each reads its settings from the environment and has its own pools, caches,
    outbox relay and consumers) and answering on the shared socket; it restarts a worker that
    dies. With 1, the part runs in this process.
    """
    # A server process freezes its start-up heap (libs.common.app.freeze_startup_heap; the
    # worker processes inherit the variable); an operator's own PINGTAI_GC_FREEZE is kept.
    os.environ.setdefault("PINGTAI_GC_FREEZE", "true")
    uvicorn.run(app_factory, workers=settings.workers, **server_options(settings))
