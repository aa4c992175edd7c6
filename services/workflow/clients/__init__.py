"""Workflow's calls to other parts: identity's token endpoint and exchange's query API."""
