"""Tokens: authorization codes, refresh-token families, access and ID tokens, revocation."""
