"""sessions keep the ID token (sealed), the hint for identity's end-session endpoint

Revision ID: portal_0003
Revises: portal_0002
Create Date: 2026-11-28 10:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "portal_0003"
down_revision: str | None = "portal_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id_token", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("portal_sessions", schema=None) as batch_op:
        batch_op.drop_column("id_token")
