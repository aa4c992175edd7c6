"""``python -m services.exchange``: serve the exchange part."""

from libs.common.serve import serve
from services.exchange.settings import ExchangeSettings

serve("services.exchange.app:create_app", ExchangeSettings())
