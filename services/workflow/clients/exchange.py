"""Exchange's query API as workflow uses it: records fetched with an application as legal basis.

Each call is a batch query of one dataset (``POST /v1/datasets/{id}/records:batch``) made with
workflow's own client-credentials token, citing ``application:<id>`` as the basis and naming
the department the fetch is for (``X-On-Behalf-Of``) and the applicant (``X-Applicant-Id``,
and ``X-Applicant-Org-Id`` for an enterprise agent's application); exchange checks that
department's grant, that each subject is the applicant's own (or their enterprise's), masks
fields and writes the access to its ledger. Several datasets are asked concurrently; answers
are matched to the subjects asked by position (exchange answers in order, with each key in its
normalised form).
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
APPLICANT_HEADER = "X-Applicant-Id"
APPLICANT_ORG_HEADER = "X-Applicant-Org-Id"
# Exchange's reason when it has not yet learnt of the applicant from identity's events: a
# matter of time (a person who has just registered), so the fetch is tried again.
APPLICANT_UNKNOWN = "applicant-unknown"
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


@dataclass(frozen=True)
class Applicant:
    """Who applied: the person, and the enterprise an agent applied for."""

    person_id: str
    org_id: str | None = None

    def headers(self) -> dict[str, str]:
        """The headers exchange checks each subject against."""
        named = {APPLICANT_HEADER: self.person_id}
        return named | ({APPLICANT_ORG_HEADER: self.org_id} if self.org_id else {})


class ExchangeClient:
    """Asks exchange for records, concurrently per (dataset, department)."""

    def __init__(self, *, http: JsonPoster, token: ClientCredentialsToken) -> None:
        self._http = http
        self._token = token

    async def fetch(
        self,
        requests: Sequence[RecordRequest],
        *,
        application_id: str,
        purpose: str,
        applicant: Applicant,
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
                    application_id=application_id, purpose=purpose, applicant=applicant,
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
        applicant: Applicant,
    ) -> list[RecordResult]:
        body: dict[str, Any] = {
            "purpose": purpose[:500],
            "basis": f"application:{application_id}",
            "subjects": [{"subject_key": key} for key in subject_keys],
        }
        if fields:
            body["fields"] = list(fields)
        headers = applicant.headers()
        if on_behalf_of:
            headers[ON_BEHALF_OF_HEADER] = on_behalf_of
        try:
            response = await self._post(BATCH_PATH.format(dataset_id=dataset_id), body, headers)
        except (ExchangeUnreachable, TokenUnavailable) as exc:
            log.warning("exchange_unavailable", dataset_id=dataset_id, error=repr(exc))
            return [RecordResult("unavailable", reason=repr(exc)[:300]) for _ in subject_keys]
        if response.status != 200 or not isinstance(response.body, dict):
            return [_failure(response) for _ in subject_keys]
        items = response.body.get("items")
        if not isinstance(items, list) or len(items) != len(subject_keys):
            return [RecordResult("unavailable", reason="exchange's answer did not match the "
                                 "subjects asked") for _ in subject_keys]  # fmt: skip
        # In order: exchange answers each subject where it was asked, its key normalised.
        return [_answer(item if isinstance(item, dict) else None) for item in items]

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
    if item.get("reason") == APPLICANT_UNKNOWN:
        return RecordResult("unavailable", receipt=receipt, reason=APPLICANT_UNKNOWN)
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
