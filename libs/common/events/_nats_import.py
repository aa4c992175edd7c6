"""Import nats-py without its WebSocket transport's aiohttp (about 7 MB resident per process).

nats-py imports aiohttp, when installed, for ``ws://`` servers; Pingtai connects over
``nats://`` only, and only the workflow part uses aiohttp itself. So the first import of
nats (this module, which ``libs.common.events`` imports first) sees aiohttp as absent; aiohttp
stays importable for whoever needs it afterwards. A ``ws://`` NATS URL would fail with nats-py's
own message ("Could not import aiohttp transport"). See docs/operations.md, "Memory".
"""

from __future__ import annotations

import importlib
import sys


def _import_nats_without_websockets() -> None:
    """Import nats with aiohttp hidden, unless either is already imported."""
    if "nats" in sys.modules or "aiohttp" in sys.modules:
        return
    sys.modules["aiohttp"] = None  # type: ignore[assignment]  # makes `import aiohttp` fail
    try:
        importlib.import_module("nats")
    finally:
        del sys.modules["aiohttp"]


_import_nats_without_websockets()
