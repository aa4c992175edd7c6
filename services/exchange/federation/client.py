"""Forwarding a query to a federated dataset's endpoint and checking what comes back."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import structlog
from http_message_signatures import HTTPMessageSignaturesException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.exchange.datasets.models import ExchangeDataset
from services.exchange.federation import protocol
from services.exchange.federation.exceptions import (
    FederationError,
    FederationNotConfigured,
    FederationResponseRefused,
    FederationTimeout,
    FederationUnreachable,
)

log = structlog.get_logger("pingtai.exchange.federation")


class FederatedRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    subject_key: str = Field(max_length=64)
    data: dict[str, Any]


class FederatedAnswer(BaseModel):
    """What a department's endpoint answers."""

    model_config = ConfigDict(extra="ignore")

    records: list[FederatedRecord]


class FederationClient:
    """Sends signed queries over one pooled HTTP client and verifies the answers."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        secrets: Mapping[str, bytes],
        max_response_bytes: int,
    ) -> None:
        self.http = http
        self.secrets = dict(secrets)
        self.max_response_bytes = max_response_bytes

    async def query(
        self,
        dataset: ExchangeDataset,
        subject_keys: Sequence[str],
        *,
        fields: Sequence[str],
        request_id: str | None,
        client_id: str,
    ) -> dict[str, dict[str, Any]]:
        """``{subject_key: {field: value}}`` from the department, signed and checked."""
        key_id = dataset.owner_org_id
        secret = self.secrets.get(key_id)
        if secret is None or not dataset.endpoint_url:
            raise FederationNotConfigured(
                f"No federation key is registered for department {key_id}; "
                "the platform's operators must add it before dataset "
                f"{dataset.id} can be queried."
            )
        # New for every forward: the caller's request id is theirs to choose and repeat, and an
        # answer recorded for one forward must not fit another (protocol.py).
        message_id = uuid.uuid4().hex
        body = json.dumps(
            {"dataset_id": dataset.id, "subject_keys": list(subject_keys), "fields": list(fields)},
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        request = self.http.build_request(
            "POST",
            dataset.endpoint_url,
            content=body,
            headers={
                "Content-Type": "application/json",
                protocol.CLIENT_HEADER: client_id,
                protocol.ID_HEADER: message_id,
                **({protocol.TRACE_HEADER: request_id} if request_id else {}),
            },
        )
        protocol.sign_request(request, key_id=key_id, secret=secret, body=body)
        expected_hash = protocol.request_hash(request.headers)
        status, headers, content = await self._send(request, dataset=dataset)
        if status != 200:
            raise FederationError(f"The endpoint of dataset {dataset.id} answered {status}.")
        try:
            protocol.verify_response(status, headers, content, key_id=key_id, secret=secret)
        except HTTPMessageSignaturesException as error:
            log.warning("federation_response_refused", dataset_id=dataset.id, reason=str(error))
            raise FederationResponseRefused(
                f"The answer for dataset {dataset.id} is not signed as agreed, or was altered."
            ) from None
        if headers.get(protocol.ID_HEADER) != message_id:
            log.warning("federation_response_refused", dataset_id=dataset.id, reason="other-id")
            raise FederationResponseRefused(
                f"The answer for dataset {dataset.id} names another request id (a replay?)."
            )
        if headers.get(protocol.REQUEST_HASH_HEADER) != expected_hash:
            log.warning("federation_response_refused", dataset_id=dataset.id, reason="other-hash")
            raise FederationResponseRefused(
                f"The answer for dataset {dataset.id} was made for another request."
            )
        return self._records(content, subject_keys=subject_keys, fields=fields)

    async def _send(
        self, request: httpx.Request, *, dataset: ExchangeDataset
    ) -> tuple[int, httpx.Headers, bytes]:
        try:
            response = await self.http.send(request, stream=True)
        except httpx.TimeoutException:
            raise FederationTimeout(
                f"The endpoint of dataset {dataset.id} did not answer in time."
            ) from None
        except httpx.HTTPError as error:
            log.warning("federation_unreachable", dataset_id=dataset.id, error=str(error))
            raise FederationUnreachable(
                f"The endpoint of dataset {dataset.id} cannot be reached."
            ) from None
        try:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise FederationResponseRefused("The answer is larger than allowed.")
                chunks.append(chunk)
        except httpx.TimeoutException:
            raise FederationTimeout(
                f"The endpoint of dataset {dataset.id} did not finish its answer in time."
            ) from None
        except httpx.HTTPError:
            raise FederationUnreachable(
                f"The endpoint of dataset {dataset.id} broke off its answer."
            ) from None
        finally:
            await response.aclose()
        return response.status_code, response.headers, b"".join(chunks)

    @staticmethod
    def _records(
        content: bytes, *, subject_keys: Sequence[str], fields: Sequence[str]
    ) -> dict[str, dict[str, Any]]:
        try:
            answer = FederatedAnswer.model_validate_json(content)
        except ValidationError:
            raise FederationResponseRefused("The answer is not a list of records.") from None
        asked = set(subject_keys)
        found: dict[str, dict[str, Any]] = {}
        for record in answer.records:
            # Only what was asked: a department cannot push other subjects or fields through.
            if record.subject_key in asked:
                found[record.subject_key] = {name: record.data.get(name) for name in fields}
        return found
