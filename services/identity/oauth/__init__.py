"""The OpenID Connect / OAuth 2.1 provider: clients, signing keys, sign-in, tokens, discovery."""
