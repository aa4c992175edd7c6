"""exchange reads the source did not deliver

Revision ID: evaluation_0008
Revises: evaluation_0007
Create Date: 2026-11-28 17:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "evaluation_0008"
down_revision: str | None = "evaluation_0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The exchange's new outcome "failed" (a federated source did not deliver); earlier such
    # reads were recorded as granted and counted there (a replay counts them here).
    with op.batch_alter_table("evaluation_indicator_daily", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("exchange_failed", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("evaluation_indicator_daily", schema=None) as batch_op:
        batch_op.drop_column("exchange_failed")
