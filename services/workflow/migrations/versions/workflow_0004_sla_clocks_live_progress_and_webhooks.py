"""sla clocks live progress and webhooks

Revision ID: workflow_0004
Revises: workflow_0003
Create Date: 2026-11-28 06:45:00.000000
"""

from collections.abc import Sequence

revision: str = "workflow_0004"
down_revision: str | None = "workflow_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
