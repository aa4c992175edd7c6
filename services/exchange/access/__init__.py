"""Access: grants, consents, record queries with masking, and "who used my data".

``router`` serves the API; ``SUBSCRIPTIONS`` keep the read copy of identity's people and
organisations (their subject references).
"""

from services.exchange.access.router import router
from services.exchange.access.subjects import SUBSCRIPTIONS

__all__ = ["SUBSCRIPTIONS", "router"]
