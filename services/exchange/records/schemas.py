"""What the hosted records API reads and writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

UploadFormat = Literal["ndjson", "csv"]


class RowProblem(BaseModel):
    """One refused row."""

    line: int = Field(description="The line the row starts on (the CSV header is line 1).")
    field: str | None = Field(description="The field at fault; null when the row is unreadable.")
    reason: str


class ImportSummary(BaseModel):
    """What became of an upload: good rows are kept, bad ones listed."""

    model_config = {
        "json_schema_extra": {
            "example": {
                "import_id": "5b0c8a3e9f1d4e2a8c7b6a5d4e3f2a1b",
                "dataset_id": "0f3c2a9e5b8d4c1e9a7b6d5c4e3f2a1b",
                "dataset_version": 2,
                "format": "ndjson",
                "received": 3,
                "inserted": 1,
                "updated": 1,
                "unchanged": 0,
                "rejected": 1,
                "errors": [
                    {
                        "line": 3,
                        "field": "credit_code",
                        "reason": "the check character (character 18) does not match the others",
                    }
                ],
                "errors_not_shown": 0,
            }
        }
    }

    import_id: str
    dataset_id: str
    dataset_version: int
    format: UploadFormat
    received: int = Field(description="Rows read (blank lines aside).")
    inserted: int = Field(description="Subjects the dataset did not hold yet.")
    updated: int = Field(description="Subjects whose record changed: a new version each.")
    unchanged: int = Field(description="Rows identical to the current version: no new version.")
    rejected: int
    errors: list[RowProblem]
    errors_not_shown: int = Field(description="Refused rows beyond the listed errors.")


class RecordVersion(BaseModel):
    """One version of a subject's record."""

    version: int
    data: dict[str, Any]
    dataset_version: int = Field(description="The catalogue version it was checked against.")
    import_id: str
    created_at: datetime
