"""Signing keys: created on first start, rotated, published in the JWKS, cached in memory."""
