"""clients' post-logout redirect URIs (OpenID Connect RP-initiated logout)

Revision ID: identity_0006
Revises: identity_0005
Create Date: 2026-11-28 09:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "identity_0006"
down_revision: str | None = "identity_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "post_logout_redirect_uris",
                sa.JSON(),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
    # The default only filled the existing clients; the models write the column themselves.
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.alter_column("post_logout_redirect_uris", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_column("post_logout_redirect_uris")
