"""OpenID Connect RP-initiated logout (the end-session endpoint)."""
