"""The platform's default ports on one machine: plain constants, importable without pydantic
(the `pingtai up` supervisor reads them and stays small; see docs/operations.md, "Memory")."""

from __future__ import annotations

# The offsets of the default ports on one machine: gateway 8000, identity 8001, ... portal 8006.
PORT_OFFSETS: dict[str, int] = {
    "gateway": 0,
    "identity": 1,
    "catalog": 2,
    "exchange": 3,
    "workflow": 4,
    "evaluation": 5,
    "portal": 6,
}
DEFAULT_PORT_BASE = 8000
