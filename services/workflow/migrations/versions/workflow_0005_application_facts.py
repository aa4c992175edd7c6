"""application facts for evaluation: channel, region, time limits, visits, items

Revision ID: workflow_0005
Revises: workflow_0004
Create Date: 2026-11-28 08:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "workflow_0005"
down_revision: str | None = "workflow_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("channel", sa.String(length=16), server_default="online", nullable=False)
        )
        batch_op.add_column(sa.Column("region_code", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("legal_time_limit_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("promised_time_limit_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("max_visits", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("items", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_column("items")
        batch_op.drop_column("max_visits")
        batch_op.drop_column("promised_time_limit_days")
        batch_op.drop_column("legal_time_limit_days")
        batch_op.drop_column("region_code")
        batch_op.drop_column("channel")
