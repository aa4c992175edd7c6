"""access ledger

Revision ID: exchange_0003
Revises: exchange_0002
Create Date: 2026-11-28 06:30:00.000000
"""

from collections.abc import Sequence

revision: str = "exchange_0003"
down_revision: str | None = "exchange_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
