"""Serve the gateway: one process as every part, or ``PINGTAI_GATEWAY_WORKERS`` of them."""

from __future__ import annotations

import uvicorn

from gateway.settings import GatewaySettings
from libs.common.serve import serve as serve_part

APP_FACTORY = "gateway.app:create_app"


def serve(settings: GatewaySettings | None = None) -> None:
    """Serve until SIGTERM or Ctrl-C.

    With one worker, exactly as every part (``libs.common.serve``). With more, uvicorn's
    supervisor binds the port once and starts that many worker processes, each calling
    ``create_app`` (its own pools, caches and limit leases) and answering on the shared socket;
    it restarts a worker that dies. The same server options as every part.
    """
    settings = settings or GatewaySettings()
    if settings.workers == 1:
        serve_part(APP_FACTORY, settings)
        return
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=10,
        server_header=False,
    )
