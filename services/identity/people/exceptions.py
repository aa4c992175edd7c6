"""Errors about people."""

from __future__ import annotations

from libs.common.errors import NotFound


class PersonNotFound(NotFound):
    code = "person-not-found"
