"""Organisations (departments and enterprises) in the region tree, and memberships with roles."""
