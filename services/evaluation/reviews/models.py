"""Reviews (好差评): one per finished application, by its applicant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from services.evaluation.base import Base
from services.evaluation.clock import new_id, utcnow


class Review(Base):
    """An applicant's rating of a finished application; editable only within a short window.

    What the application was (item, departments, region, channel) is copied from evaluation's
    read copy at the time of the review, so the review stands on its own.
    """

    __tablename__ = "evaluation_review"
    __table_args__ = (
        Index("ix_evaluation_review_applicant", "applicant_id", "created_at", "id"),
        Index("ix_evaluation_review_created", "created_at", "id"),
        # An Idempotency-Key names one review of its caller: of two concurrent submissions
        # with one key, the second insert fails here (rows without a key are not compared).
        Index(
            "uq_evaluation_review_applicant_idempotency_key",
            "applicant_id",
            "idempotency_key",
            unique=True,
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    # One review per application: the unique constraint decides between concurrent submissions.
    application_id: Mapped[str] = mapped_column(String(64), unique=True)
    applicant_id: Mapped[str] = mapped_column(String(64))
    applicant_org_id: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # completed | rejected
    item_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    service_code: Mapped[str | None] = mapped_column(String(64))
    department_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    region_code: Mapped[str | None] = mapped_column(String(6))
    channel: Mapped[str | None] = mapped_column(String(32))
    overall: Mapped[int] = mapped_column(Integer)
    speed: Mapped[int] = mapped_column(Integer)
    attitude: Mapped[int] = mapped_column(Integer)
    clarity: Mapped[int] = mapped_column(Integer)
    convenience: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    editable_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Counts changes; events carry it so the indicator projection keeps the latest.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))


class ReviewDepartment(Base):
    """A department a review concerns: lets a department list its reviews by index."""

    __tablename__ = "evaluation_review_department"
    __table_args__ = (
        Index("ix_evaluation_review_department_listing", "department_id", "created_at"),
    )

    review_id: Mapped[str] = mapped_column(
        ForeignKey("evaluation_review.id", ondelete="CASCADE"), primary_key=True
    )
    department_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
