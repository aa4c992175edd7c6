"""access ledger

Revision ID: exchange_0003
Revises: exchange_0002
Create Date: 2026-11-28 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "exchange_0003"
down_revision: str | None = "exchange_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ENTRY = "exchange_ledger_entry"


def upgrade() -> None:
    op.create_table(
        _ENTRY,
        sa.Column("position", _Position, autoincrement=False, nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("client_id", sa.String(length=255), nullable=False),
        sa.Column("actor_org_id", sa.String(length=255), nullable=True),
        sa.Column("dataset_id", sa.String(length=255), nullable=False),
        sa.Column("owner_org_id", sa.String(length=255), nullable=True),
        sa.Column("subject_ref", sa.String(length=128), nullable=True),
        sa.Column("fields", sa.Text(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("basis_kind", sa.String(length=32), nullable=False),
        sa.Column("basis_ref", sa.String(length=512), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(length=255), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f(f"pk_{_ENTRY}")),
    )
    with op.batch_alter_table(_ENTRY, schema=None) as batch_op:
        for column in ("subject_ref", "actor_org_id", "dataset_id"):
            batch_op.create_index(
                f"ix_{_ENTRY}_{column}_position", [column, "position"], unique=False
            )
        batch_op.create_index(f"ix_{_ENTRY}_recorded_at", ["recorded_at"], unique=False)

    op.create_table(
        "exchange_ledger_checkpoint",
        sa.Column("position", _Position, autoincrement=False, nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_exchange_ledger_checkpoint")),
    )
    head = op.create_table(
        "exchange_ledger_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("last_checkpoint_position", sa.BigInteger(), nullable=False),
        sa.Column("last_checkpoint_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_ledger_head")),
    )
    # The head of the empty chain: the row every append locks.
    op.bulk_insert(
        head,
        [
            {
                "id": 1,
                "position": 0,
                "entry_hash": "0" * 64,
                "last_checkpoint_position": 0,
                "last_checkpoint_at": None,
            }
        ],
    )


def downgrade() -> None:
    op.drop_table("exchange_ledger_head")
    op.drop_table("exchange_ledger_checkpoint")
    with op.batch_alter_table(_ENTRY, schema=None) as batch_op:
        batch_op.drop_index(f"ix_{_ENTRY}_recorded_at")
        for column in ("dataset_id", "actor_org_id", "subject_ref"):
            batch_op.drop_index(f"ix_{_ENTRY}_{column}_position")
    op.drop_table(_ENTRY)
