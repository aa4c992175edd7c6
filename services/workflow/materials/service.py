"""Materials: planned from the offering, fetched from exchange, or uploaded and stored."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import unicodedata
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from libs.common.errors import PayloadTooLarge
from services.workflow import bulk
from services.workflow.applications.exceptions import UnsupportedMediaType, UploadTooSlow
from services.workflow.applications.models import ApplicationMaterial
from services.workflow.catalogue.schemas import Material
from services.workflow.clients.exchange import Applicant, ExchangeClient, RecordRequest
from services.workflow.ids import utcnow

_UNSAFE = re.compile(r"[^\w.\-]+", re.UNICODE)


def plan(
    *,
    application_id: str,
    materials: Sequence[Material],
    form: dict[str, object],
    owners: dict[str, str],
    default_owner: str | None,
    default_types: list[str],
    max_bytes: int,
) -> list[ApplicationMaterial]:
    """The application's materials: dataset-sourced ones to fetch, the others to upload.

    ``owners`` maps an item id to its department, on whose behalf a material it needs is fetched.
    """
    rows = []
    for material in materials:
        row = bulk.new_row(
            ApplicationMaterial, application_id=application_id, key=material.key,
            name=material.name, source=material.source, item_ids=list(material.item_ids),
            fetch_attempts=0,
        )  # fmt: skip
        if material.dataset is not None:
            subject = form.get(material.dataset.applicant_field)
            row.dataset_id = material.dataset.dataset_id
            row.wanted_fields = list(material.dataset.fields)
            row.on_behalf_of = next(
                (owners[i] for i in material.item_ids if i in owners), default_owner
            )
            if isinstance(subject, str) and subject:
                row.subject_key = subject[:128]
                row.state = "pending_fetch"
            else:
                _ask_upload(row, default_types, max_bytes,
                            f"the form has no {material.dataset.applicant_field}")  # fmt: skip
        else:
            spec = material.upload
            types = list(spec.content_types) if spec else default_types
            _ask_upload(row, types, min(spec.max_bytes, max_bytes) if spec else max_bytes, None)
        rows.append(row)
    return rows


def _ask_upload(
    row: ApplicationMaterial, types: list[str], max_bytes: int, reason: str | None
) -> None:
    row.state = "requested"
    row.allowed_types = types
    row.max_bytes = max_bytes
    row.last_error = reason


async def fetch(
    client: ExchangeClient,
    *,
    application_id: str,
    applicant: Applicant,
    purpose: str,
    materials: Sequence[ApplicationMaterial],
    default_types: list[str],
    max_bytes: int,
    max_attempts: int,
) -> int:
    """Ask exchange for every pending material; update the rows; return how many were fetched.

    Found: attached with exchange's receipt. Not found or refused (a subject that is not the
    applicant's own among the reasons): asked of the applicant. Exchange unreachable: left
    pending, to be retried, until ``max_attempts`` attempts: then asked of the applicant too.
    """
    pending = [m for m in materials if m.state == "pending_fetch"]
    if not pending:
        return 0
    requests = [
        RecordRequest(dataset_id=m.dataset_id or "", subject_key=m.subject_key or "",
                      fields=tuple(m.wanted_fields or ()), on_behalf_of=m.on_behalf_of)
        for m in pending
    ]  # fmt: skip
    results = await client.fetch(
        requests, application_id=application_id, purpose=purpose, applicant=applicant
    )
    at = utcnow()
    fetched = 0
    for row, result in zip(pending, results, strict=True):
        row.fetch_attempts = (row.fetch_attempts or 0) + 1
        if result.outcome == "read":
            row.state = "fetched"
            row.record = result.record
            row.receipt = {**(result.receipt or {}), "masked_fields": result.masked_fields}
            row.fetched_at = at
            row.last_error = None
            fetched += 1
        elif result.outcome == "unavailable" and row.fetch_attempts < max_attempts:
            row.last_error = (result.reason or "exchange unavailable")[:500]
        elif result.outcome == "unavailable":
            row.receipt = result.receipt
            reason = f"not fetched after {row.fetch_attempts} attempts: {result.reason}"
            _ask_upload(row, default_types, max_bytes, reason[:500])
        else:
            row.receipt = result.receipt
            reason = "not held by the government" if result.outcome == "not_found" else (
                f"exchange refused: {result.reason}")  # fmt: skip
            _ask_upload(row, default_types, max_bytes, reason[:500])
    return fetched


def safe_file_name(name: str | None, *, fallback: str) -> str:
    """A file name to show and keep: no folders, no control characters, at most 120 characters."""
    base = unicodedata.normalize("NFKC", name or "").replace("\\", "/").split("/")[-1]
    base = _UNSAFE.sub("_", base).strip("._")
    return (base or fallback)[:120]


def check_type(content_type: str | None, allowed: Sequence[str]) -> str:
    """The upload's media type (parameters dropped) if allowed, else a 415 problem."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in allowed:
        raise UnsupportedMediaType(
            f"{media or 'no Content-Type'} is not accepted here; send one of: {', '.join(allowed)}."
        )
    return media


async def paced(
    chunks: AsyncIterator[bytes], *, min_rate_bytes_s: int, grace_s: float
) -> AsyncIterator[bytes]:
    """``chunks``, cut off with a 408 when the body falls behind ``min_rate_bytes_s`` after
    ``grace_s`` seconds (each chunk is awaited only until the rate's deadline)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    received = 0
    iterator = aiter(chunks)
    while True:
        deadline = start + grace_s + received / min_rate_bytes_s
        try:
            chunk = await asyncio.wait_for(anext(iterator), timeout=max(deadline - loop.time(), 0))
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise UploadTooSlow(
                f"The upload arrived slower than {min_rate_bytes_s} bytes/s; send it again."
            ) from None
        received += len(chunk)
        yield chunk


async def store(
    chunks: AsyncIterator[bytes], *, folder: Path, max_bytes: int
) -> tuple[Path, int, str]:
    """Stream an upload into ``folder`` (path, size, SHA-256); 413 past ``max_bytes``.

    The file is written under a temporary name and renamed to its checksum (and a random
    suffix: each upload owns its file, to keep or delete) only when complete, so a half-written
    file never stands for a material.
    """
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".upload-{os.urandom(8).hex()}"
    digest = hashlib.sha256()
    size = 0
    try:
        with temporary.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise PayloadTooLarge(f"The file is larger than {max_bytes} bytes.")
                digest.update(chunk)
                out.write(chunk)
        checksum = digest.hexdigest()
        final = folder / f"{checksum}.{os.urandom(4).hex()}"
        temporary.replace(final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return final, size, checksum
