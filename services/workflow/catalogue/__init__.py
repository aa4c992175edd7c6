"""Workflow's read copy of the catalogue: the published versions applications use."""
