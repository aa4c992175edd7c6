"""Run one part under uvicorn, as ``python -m services.<part>`` or ``pingtai serve <part>``."""

from __future__ import annotations

import uvicorn

from libs.common.settings import PartSettings


def serve(app_factory: str, settings: PartSettings) -> None:
    """Serve ``module:create_app`` on the part's host and port until SIGTERM or Ctrl-C."""
    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        # Our middleware logs each request once, in JSON; uvicorn's access log would double it.
        access_log=False,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=10,
        server_header=False,
    )
