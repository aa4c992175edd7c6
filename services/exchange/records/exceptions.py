"""Errors about hosted records."""

from __future__ import annotations

from libs.common.errors import NotFound, PingtaiError


class UnsupportedUploadType(PingtaiError):
    status = 415
    code = "unsupported-media-type"
    title = "Send records as application/x-ndjson or text/csv"


class RecordNotFound(NotFound):
    code = "record-not-found"
