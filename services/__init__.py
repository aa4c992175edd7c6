"""The platform's services; each one a separate process with its own database."""
