"""Sign-in: the form, password checks with throttling and lockout, the identity-provider session."""
