"""Keep two libraries from importing optional dependencies Pingtai never uses through them.

- nats-py imports aiohttp (≈ 7 MB resident), when installed, for ``ws://`` servers; Pingtai
  connects over ``nats://`` only. A ``ws://`` NATS URL fails with nats-py's own message
  ("Could not import aiohttp transport").
- structlog imports rich (≈ 5 MB) to render exceptions in its console renderer; Pingtai's
  logging formats exceptions before rendering (``structlog.processors.format_exc_info``), so
  the renderer never draws one.
- httpx imports click, pygments and rich for its command-line client (``httpx.main``), which
  Pingtai never runs; refused, ``httpx.main`` says which extra to install.
- uvicorn imports websockets (or wsproto) to serve WebSocket upgrades, and watchfiles for
  ``--reload`` (≈ 1.2 MB together); no part serves a WebSocket (live updates are server-sent
  events) and none runs with ``--reload``. Refused, uvicorn answers an upgrade request as plain
  HTTP (it logs "Unsupported upgrade request") and would reload by polling file times.
- FastAPI imports pydantic's v1 package (23 modules, ≈ 1.5 MB) to ask of each model whether it
  is a v1 one; refused, it answers no. Pingtai's models are all pydantic 2.

Only those importers are refused: the workflow part imports aiohttp itself, the ``pingtai``
command rich (through typer), and either then is an ordinary import; once a library is imported,
everyone shares it. Installed by ``libs/common/__init__.py``, before any part's code runs. See
docs/operations.md, "Memory on one machine".
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

# module -> the importers that get ModuleNotFoundError for it, as if it were not installed
_HIDDEN_FROM: dict[str, frozenset[str]] = {
    "aiohttp": frozenset({"nats.aio.transport"}),
    "click": frozenset({"httpx._main"}),
    "pygments": frozenset({"httpx._main"}),
    # FastAPI imports pydantic's v1 package (23 modules, ~1.5 MB) only to ask whether a model
    # is a v1 one; without it, it answers no (it catches the ImportError). Pingtai has none.
    "pydantic.v1": frozenset({"fastapi._compat.shared"}),
    "rich": frozenset({"httpx._main", "structlog.dev", "structlog.tracebacks"}),
    "watchfiles": frozenset({"uvicorn.supervisors.watchfilesreload"}),
    "websockets": frozenset({"uvicorn.protocols.websockets.auto"}),
    "wsproto": frozenset({"uvicorn.protocols.websockets.auto"}),
}


def _importer() -> str:
    """The module whose code runs the import statement (outside importlib's frames)."""
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_globals.get("__name__", "")
        if not (name.startswith("importlib") or name == "_frozen_importlib"):
            return str(name)
        frame = frame.f_back  # type: ignore[assignment]
    return ""


class _UnusedImportFinder:
    """A meta path finder that answers only for the hidden modules and their importers."""

    @staticmethod
    def find_spec(
        fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        importers = _HIDDEN_FROM.get(fullname)
        if importers is not None and _importer() in importers:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


def hide_unused_optional_imports() -> None:
    """Install the finder once (first on sys.meta_path)."""
    if not any(isinstance(f, _UnusedImportFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _UnusedImportFinder())
