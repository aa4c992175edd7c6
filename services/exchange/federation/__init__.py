"""Federated datasets: queries forwarded to the department's endpoint, signed both ways."""

from services.exchange.federation.client import FederationClient

__all__ = ["FederationClient"]
