"""The edge: what the gateway checks before it forwards (identity, keys, limits, breakers)."""
