"""The route table: which path goes to which part, declared once and matched per request."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from gateway.settings import SERVICE_PARTS, RoutePolicy

# The target of the gateway's own paths: served by its FastAPI app, not forwarded.
GATEWAY = "gateway"

# The gateway's own endpoints (health, metrics, its OpenAPI and docs) and its own API.
OWN_PATHS: tuple[str, ...] = (
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/developers",
)
OWN_PREFIXES: tuple[str, ...] = ("/v1",)


@dataclass(frozen=True, slots=True)
class Route:
    """One row: a path at or under ``prefix`` goes to ``target``.

    ``target`` is a part's name, ``GATEWAY`` for the gateway's own app, or ``None`` when nothing
    is there (a 404 problem). ``strip_prefix`` forwards ``/api/identity/x`` as ``/x``: it strips
    ``mount`` (the part's public prefix), which is ``prefix`` unless the route is a more specific
    one under it (``/api/exchange/v1/open`` still strips ``/api/exchange``). ``policy`` is what
    the edge asks of requests on it.
    """

    prefix: str
    target: str | None
    strip_prefix: bool = False
    exact: bool = False
    policy: RoutePolicy = field(default_factory=RoutePolicy)
    mount: str = ""
    _with_slash: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_with_slash", f"{self.prefix}/")
        if not self.mount:
            object.__setattr__(self, "mount", self.prefix)

    @property
    def path(self) -> str:
        """The route's label in metrics and access logs (read from ``scope["route"]``)."""
        return self.prefix if self.exact else f"{self.prefix}/*"

    # OpenTelemetry's ASGI middleware reads ``http.route`` from here.
    path_format = path

    def matches(self, path: str) -> bool:
        """Whether ``path`` is this route's prefix or lies under it (segment by segment)."""
        if self.exact:
            return path == self.prefix
        return not self.prefix or path == self.prefix or path.startswith(self._with_slash)


def default_routes(services: Iterable[str] = SERVICE_PARTS) -> tuple[Route, ...]:
    """The platform's route table, first match wins (DESIGN, "HTTP conventions")."""
    return (
        *(Route(path, GATEWAY, exact=True) for path in OWN_PATHS),
        *(Route(prefix, GATEWAY) for prefix in OWN_PREFIXES),
        *(Route(f"/api/{part}", part, strip_prefix=True) for part in services),
        Route("/api", None),
        Route("/.well-known", "identity"),
        Route("/oauth2", "identity"),
        Route("", "portal"),
    )


def with_policies(
    routes: Sequence[Route], policies: Mapping[str, RoutePolicy]
) -> tuple[Route, ...]:
    """``routes`` with the operator's policies: a route's own prefix gets its policy, and a
    prefix under a forwarded route becomes a more specific route (matched first) to its part."""
    result = [
        replace(route, policy=policies[route.prefix]) if route.prefix in policies else route
        for route in routes
    ]
    known = {route.prefix for route in routes}
    # Longest first, so a deeper prefix wins over a shallower one under the same route.
    for prefix in sorted(set(policies) - known, key=len, reverse=True):
        parent = next((r for r in routes if not r.exact and r.matches(prefix)), None)
        if parent is None or parent.target in (None, GATEWAY):
            raise ValueError(f"the route policy {prefix!r} is not under a forwarded route")
        specific = replace(parent, prefix=prefix, policy=policies[prefix], mount=parent.mount)
        result.insert(result.index(next(r for r in result if r.prefix == parent.prefix)), specific)
    return tuple(result)


class RouteTable:
    """Matches a request path to its route: exact paths by lookup, then prefixes in order."""

    def __init__(self, routes: Sequence[Route]) -> None:
        self.routes = tuple(routes)
        self._exact: dict[str, Route] = {}
        for route in self.routes:
            if route.exact:
                self._exact.setdefault(route.prefix, route)
        self._prefixed = tuple(route for route in self.routes if not route.exact)
        self._fallback = Route("", None)

    @property
    def targets(self) -> frozenset[str]:
        """The parts this table forwards to."""
        return frozenset(r.target for r in self.routes if r.target not in (None, GATEWAY))

    def match(self, path: str) -> Route:
        """The first route for ``path``; a not-found route when none matches."""
        route = self._exact.get(path)
        if route is not None:
            return route
        for route in self._prefixed:
            if route.matches(path):
                return route
        return self._fallback
