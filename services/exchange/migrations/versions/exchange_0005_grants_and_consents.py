"""grants and consents

Revision ID: exchange_0005
Revises: exchange_0004
Create Date: 2026-11-28 06:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "exchange_0005"
down_revision: str | None = "exchange_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exchange_grants",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=32), nullable=False),
        sa.Column("requester_org_id", sa.String(length=64), nullable=False),
        sa.Column("owner_org_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("unmasked_fields", sa.JSON(), nullable=False),
        sa.Column("statutes", sa.JSON(), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requested_by", sa.String(length=255), nullable=False),
        sa.Column("decided_by", sa.String(length=255), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("revoked_by", sa.String(length=255), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_grants")),
    )
    with op.batch_alter_table("exchange_grants", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exchange_grants_requester_dataset",
            ["requester_org_id", "dataset_id", "status"],
            unique=False,
        )
        batch_op.create_index(
            "ix_exchange_grants_owner_org_id_id", ["owner_org_id", "id"], unique=False
        )

    op.create_table(
        "exchange_consents",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("subject_kind", sa.String(length=16), nullable=False),
        sa.Column("given_by", sa.String(length=255), nullable=False),
        sa.Column("grantee_org_id", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.Text(), nullable=False),
        sa.Column("scope", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_by", sa.String(length=255), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_consents")),
    )
    with op.batch_alter_table("exchange_consents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exchange_consents_subject_ref_id", ["subject_ref", "id"], unique=False
        )

    op.create_table(
        "exchange_person_subjects",
        sa.Column("person_id", sa.String(length=64), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_exchange_person_subjects")),
    )
    with op.batch_alter_table("exchange_person_subjects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exchange_person_subjects_subject_ref"), ["subject_ref"], unique=False
        )

    op.create_table(
        "exchange_organisation_subjects",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subject_ref", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_exchange_organisation_subjects")),
    )
    with op.batch_alter_table("exchange_organisation_subjects", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_exchange_organisation_subjects_subject_ref"),
            ["subject_ref"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("exchange_organisation_subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_organisation_subjects_subject_ref"))
    op.drop_table("exchange_organisation_subjects")
    with op.batch_alter_table("exchange_person_subjects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exchange_person_subjects_subject_ref"))
    op.drop_table("exchange_person_subjects")
    with op.batch_alter_table("exchange_consents", schema=None) as batch_op:
        batch_op.drop_index("ix_exchange_consents_subject_ref_id")
    op.drop_table("exchange_consents")
    with op.batch_alter_table("exchange_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_exchange_grants_owner_org_id_id")
        batch_op.drop_index("ix_exchange_grants_requester_dataset")
    op.drop_table("exchange_grants")
