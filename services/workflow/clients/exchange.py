"""Exchange's query API as workflow uses it: records fetched with an application as legal basis.

Each call is a batch query of one dataset (``POST /v1/datasets/{id}/records:batch``) made with
workflow's own client-credentials token, citing ``application:<id>`` as the basis and naming
the department the fetch is for (``X-On-Behalf-Of``); exchange checks that department's grant,
masks fields and writes the access to its ledger. Several datasets are asked concurrently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from services.workflow.clients.tokens import ClientCredentialsToken, TokenUnavailable
from services.workflow.clients.transport import Answer, ExchangeUnreachable, JsonPoster

log = structlog.get_logger("pingtai.workflow.exchange")

ON_BEHALF_OF_HEADER = "X-On-Behalf-Of"
BATCH_PATH = "/v1/datasets/{dataset_id}/records:batch"

# Exchange's problem type when the department holding a federated dataset has no system
# connected (no federation key registered).
NOT_CONNECTED = "/federation-not-configured"

Outcome = Literal["read", "not_found", "refused", "unavailable"]


@dataclass(frozen=True)
class RecordRequest:
    """One material's record: a subject of a dataset, for a department."""

    dataset_id: str
    subject_key: str
    fields: tuple[str, ...]
    on_behalf_of: str | None


@dataclass
class RecordResult:
    """What exchange said about one request."""

    outcome: Outcome
    record: dict[str, Any] | None = None
    receipt: dict[str, Any] | None = None
    reason: str | None = None
    masked_fields: list[str] = field(default_factory=list)


class ExchangeClient:
    """Asks exchange for records, concurrently per (dataset, department)."""

    def __init__(self, *, http: JsonPoster, token: ClientCredentialsToken) -> None:
        self._http = http
        self._token = token

    async def fetch(
        self, requests: Sequence[RecordRequest], *, application_id: str, purpose: str
    ) -> list[RecordResult]:
        """One result per request, in order; ``unavailable`` when exchange could not answer."""
        groups: dict[tuple[str, str | None, tuple[str, ...]], list[int]] = {}
        for index, request in enumerate(requests):
            key = (request.dataset_id, request.on_behalf_of, request.fields)
            groups.setdefault(key, []).append(index)
        results: list[RecordResult | None] = [None] * len(requests)
        answers = await asyncio.gather(
            *(
                self._batch(
                    dataset_id=dataset_id, on_behalf_of=org, fields=fields,
                    subject_keys=[requests[i].subject_key for i in indexes],
                    application_id=application_id, purpose=purpose,
                )
                for (dataset_id, org, fields), indexes in groups.items()
            )
        )  # fmt: skip
        for indexes, answer in zip(groups.values(), answers, strict=True):
            for index, result in zip(indexes, answer, strict=True):
                results[index] = result
        return [r or RecordResult("unavailable", reason="no answer") for r in results]

    async def _batch(
        self,
        *,
        dataset_id: str,
        on_behalf_of: str | None,
        fields: tuple[str, ...],
        subject_keys: list[str],
        application_id: str,
        purpose: str,
    ) -> list[RecordResult]:
        body: dict[str, Any] = {
            "purpose": purpose[:500],
            "basis": f"application:{application_id}",
            "subjects": [{"subject_key": key} for key in subject_keys],
        }
        if fields:
            body["fields"] = list(fields)
        headers = {ON_BEHALF_OF_HEADER: on_behalf_of} if on_behalf_of else {}
        try:
            response = await self._post(BATCH_PATH.format(dataset_id=dataset_id), body, headers)
        except (ExchangeUnreachable, TokenUnavailable) as exc:
            log.warning("exchange_unavailable", dataset_id=dataset_id, error=repr(exc))
            return [RecordResult("unavailable", reason=repr(exc)[:300]) for _ in subject_keys]
        if response.status != 200 or not isinstance(response.body, dict):
            return [_failure(response) for _ in subject_keys]
        by_key = {item["subject_key"]: item for item in response.body.get("items", [])}
        return [_answer(by_key.get(key)) for key in subject_keys]

    async def _post(self, path: str, body: dict[str, Any], headers: dict[str, str]) -> Answer:
        token = await self._token.get()
        response = await self._http.post(
            path, body, {**headers, "Authorization": f"Bearer {token}"}
        )
        if response.status == 401:
            # The token was refused (revoked, keys rotated): one more try with a fresh one.
            self._token.forget()
            token = await self._token.get()
            response = await self._http.post(
                path, body, {**headers, "Authorization": f"Bearer {token}"}
            )
        return response


def _answer(item: dict[str, Any] | None) -> RecordResult:
    if item is None:
        return RecordResult("unavailable", reason="exchange's answer left this subject out")
    receipt = {"ledger_position": item.get("ledger_position")}
    outcome = item.get("outcome")
    if outcome == "read":
        return RecordResult(
            "read", record=item.get("record") or {}, receipt=receipt,
            masked_fields=list(item.get("masked_fields") or []),
        )  # fmt: skip
    if outcome == "not_found":
        return RecordResult("not_found", receipt=receipt)
    return RecordResult("refused", receipt=receipt, reason=str(item.get("reason") or outcome))


def _failure(response: Answer) -> RecordResult:
    """A whole batch refused: a client error is final (ask the applicant), else retry later."""
    reason = f"exchange answered {response.status}: {response.text[:200]}"
    problem = response.body.get("type", "") if isinstance(response.body, dict) else ""
    if str(problem).endswith(NOT_CONNECTED):
        # The department has no system connected to exchange: waiting will not bring the
        # record, so the applicant is asked for it now rather than never.
        return RecordResult("refused", reason=reason)
    if response.status in (400, 403, 404, 409, 422):
        return RecordResult("refused", reason=reason)
    return RecordResult("unavailable", reason=reason)
