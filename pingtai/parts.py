"""The platform's parts, in the order `pingtai up` starts them."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from libs.common.ports import DEFAULT_PORT_BASE, PORT_OFFSETS

if TYPE_CHECKING:
    from libs.common.settings import PartSettings


@dataclass(frozen=True)
class Part:
    """A part of the platform: a process with its own app, settings and database."""

    name: str
    package: str
    settings_class: str
    # glibc maps a large freed-and-reallocated block (argon2id's 19 MiB per password hash) with
    # transparent huge pages: only identity hashes passwords (docs/operations.md, "Memory").
    huge_pages: bool = False

    @property
    def app_factory(self) -> str:
        return f"{self.package}.app:create_app"

    @property
    def env_prefix(self) -> str:
        return f"PINGTAI_{self.name.upper()}_"

    def port(self, base: int = DEFAULT_PORT_BASE) -> int:
        """The part's port when the platform's ports start at ``base``."""
        return base + PORT_OFFSETS[self.name]

    def settings(self) -> PartSettings:
        """The part's settings, read from the environment."""
        module = importlib.import_module(f"{self.package}.settings")
        settings: PartSettings = getattr(module, self.settings_class)()
        return settings


PARTS: tuple[Part, ...] = (
    Part("identity", "services.identity", "IdentitySettings", huge_pages=True),
    Part("catalog", "services.catalog", "CatalogSettings"),
    Part("exchange", "services.exchange", "ExchangeSettings"),
    Part("workflow", "services.workflow", "WorkflowSettings"),
    Part("evaluation", "services.evaluation", "EvaluationSettings"),
    Part("portal", "portal", "PortalSettings"),
    Part("gateway", "gateway", "GatewaySettings"),
)
PART_NAMES: tuple[str, ...] = tuple(p.name for p in PARTS)


def get_part(name: str) -> Part:
    """The part called ``name``, or ValueError naming the known ones."""
    for part in PARTS:
        if part.name == name:
            return part
    raise ValueError(f"unknown part {name!r}; known parts: {', '.join(PART_NAMES)}")
