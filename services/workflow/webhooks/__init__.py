"""Webhooks: departments' and enterprises' systems told of workflow events, signed and retried."""
