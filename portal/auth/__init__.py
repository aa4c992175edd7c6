"""Sign-in with the platform's OpenID Connect provider, and sign-out."""
