"""``python -m gateway``: serve the gateway part (``PINGTAI_GATEWAY_WORKERS`` processes)."""

from gateway.serve import serve

serve()
