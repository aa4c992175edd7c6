"""datasets and records

Revision ID: exchange_0004
Revises: exchange_0003
Create Date: 2026-11-28 06:30:00.000000
"""

from collections.abc import Sequence

revision: str = "exchange_0004"
down_revision: str | None = "exchange_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
