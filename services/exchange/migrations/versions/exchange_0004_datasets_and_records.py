"""datasets and records: the read copy of the catalogue, hosted records, their versions, imports

Revision ID: exchange_0004
Revises: exchange_0003
Create Date: 2026-11-28 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "exchange_0004"
down_revision: str | None = "exchange_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exchange_datasets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("owner_org_id", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_en", sa.String(length=200), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("region_code", sa.String(length=6), nullable=False),
        sa.Column("field_definitions", sa.JSON(), nullable=False),
        sa.Column("subject_key_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_key_field", sa.String(length=64), nullable=False),
        sa.Column("share_type", sa.String(length=16), nullable=False),
        sa.Column("open_type", sa.String(length=16), nullable=False),
        sa.Column("not_open_reason", sa.Text(), nullable=True),
        sa.Column("update_frequency", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("endpoint_url", sa.String(length=2048), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_version", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_datasets")),
    )
    with op.batch_alter_table("exchange_datasets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exchange_datasets_code"), ["code"], unique=False)
        batch_op.create_index(
            "ix_exchange_datasets_open_type_code", ["open_type", "code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_exchange_datasets_owner_org_id"), ["owner_org_id"], unique=False
        )

    op.create_table(
        "exchange_record_imports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("dataset_version", sa.Integer(), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("by_sub", sa.String(length=255), nullable=False),
        sa.Column("by_client_id", sa.String(length=255), nullable=False),
        sa.Column("by_org_id", sa.String(length=32), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["exchange_datasets.id"],
            name=op.f("fk_exchange_record_imports_dataset_id_exchange_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_record_imports")),
    )
    with op.batch_alter_table("exchange_record_imports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exchange_record_imports_dataset", ["dataset_id", "started_at"], unique=False
        )

    op.create_table(
        "exchange_record_versions",
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("subject_key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("dataset_version", sa.Integer(), nullable=False),
        sa.Column("import_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["exchange_datasets.id"],
            name=op.f("fk_exchange_record_versions_dataset_id_exchange_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "dataset_id", "subject_key", "version", name=op.f("pk_exchange_record_versions")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "exchange_records",
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("subject_key", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["exchange_datasets.id"],
            name=op.f("fk_exchange_records_dataset_id_exchange_datasets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dataset_id", "subject_key", name=op.f("pk_exchange_records")),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("exchange_records")
    op.drop_table("exchange_record_versions")
    with op.batch_alter_table("exchange_record_imports", schema=None) as batch_op:
        batch_op.drop_index("ix_exchange_record_imports_dataset")

    op.drop_table("exchange_record_imports")
    with op.batch_alter_table("exchange_datasets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_datasets_owner_org_id"))
        batch_op.drop_index("ix_exchange_datasets_open_type_code")
        batch_op.drop_index(batch_op.f("ix_exchange_datasets_code"))

    op.drop_table("exchange_datasets")
