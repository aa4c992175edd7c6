"""docs/authorisation.md publishes the matrix as ``matrix.py`` holds it."""

from __future__ import annotations

from tests.authz.publish import published, render


def test_the_published_matrix_is_the_tested_one() -> None:
    assert published() == render(), "run: .venv/bin/python -m tests.authz.publish"
