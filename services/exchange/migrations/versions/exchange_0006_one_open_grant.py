"""one open grant per organisation and dataset

Revision ID: exchange_0006
Revises: exchange_0005
Create Date: 2026-11-28 11:30:00.000000

A partial unique index keeps two requests at once from both opening a grant for the same
(requester, dataset). Duplicates made before it are resolved first: of a pair's open grants
(pending or granted) the one kept is the newest in force, else the newest pending one, else the
newest; the others are stored ``expired`` when their period has passed, else ``revoked`` (by
this migration, naming the grant kept).
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import groupby

import sqlalchemy as sa
from alembic import op

revision: str = "exchange_0006"
down_revision: str | None = "exchange_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_GRANT = "status IN ('pending', 'granted')"
grants = sa.table(
    "exchange_grants",
    sa.column("id", sa.String),
    sa.column("requester_org_id", sa.String),
    sa.column("dataset_id", sa.String),
    sa.column("status", sa.String),
    sa.column("valid_until", sa.DateTime(timezone=True)),
    sa.column("revoked_by", sa.String),
    sa.column("revoked_at", sa.DateTime(timezone=True)),
    sa.column("revoke_reason", sa.Text),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _resolve_duplicates(connection: sa.Connection) -> None:
    now = datetime.now(UTC)
    rows = connection.execute(
        sa.select(grants.c.id, grants.c.requester_org_id, grants.c.dataset_id, grants.c.status,
                  grants.c.valid_until)
        .where(grants.c.status.in_(("pending", "granted")))
        .order_by(grants.c.requester_org_id, grants.c.dataset_id, grants.c.id)
    ).all()  # fmt: skip
    for _pair, group in groupby(rows, key=lambda row: (row.requester_org_id, row.dataset_id)):
        open_ones = list(group)
        if len(open_ones) < 2:
            continue

        def rank(row: sa.Row[tuple[str, str, str, str, datetime]]) -> tuple[int, str]:
            in_force = row.status == "granted" and _utc(row.valid_until) > now
            return (2 if in_force else 1 if row.status == "pending" else 0, row.id)

        kept = max(open_ones, key=rank)
        for row in open_ones:
            if row.id == kept.id:
                continue
            if row.status == "granted" and _utc(row.valid_until) <= now:
                values = {"status": "expired", "updated_at": now}
            else:
                values = {"status": "revoked", "revoked_by": "migration:exchange_0006",
                          "revoked_at": now, "updated_at": now,
                          "revoke_reason": f"duplicate of grant {kept.id}"}  # fmt: skip
            connection.execute(sa.update(grants).where(grants.c.id == row.id).values(**values))


def upgrade() -> None:
    _resolve_duplicates(op.get_bind())
    with op.batch_alter_table("exchange_grants", schema=None) as batch_op:
        batch_op.create_index(
            "uq_exchange_grants_open",
            ["requester_org_id", "dataset_id"],
            unique=True,
            sqlite_where=sa.text(OPEN_GRANT),
            postgresql_where=sa.text(OPEN_GRANT),
        )


def downgrade() -> None:
    with op.batch_alter_table("exchange_grants", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_exchange_grants_open",
            sqlite_where=sa.text(OPEN_GRANT),
            postgresql_where=sa.text(OPEN_GRANT),
        )
    # Before this revision a lapsed grant stayed "granted" (its period tells it has expired).
    op.execute(sa.update(grants).where(grants.c.status == "expired").values(status="granted"))
