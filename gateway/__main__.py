"""``python -m gateway``: serve the gateway part."""

from gateway.settings import GatewaySettings
from libs.common.serve import serve

serve("gateway.app:create_app", GatewaySettings())
