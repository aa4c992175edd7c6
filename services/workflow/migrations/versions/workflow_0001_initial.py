"""The workflow part's initial revision: an empty schema that later revisions build on.

Revision ID: workflow_0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

revision: str = "workflow_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing yet: the workflow part has no tables of its own so far."""


def downgrade() -> None:
    """Nothing to undo."""
