"""Record queries (数据查询): the grant, the legal basis and consent decide; fields are masked by
sensitivity; every read and every refusal is written to the ledger before anything is answered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal
from libs.common.context import current_request_id
from libs.common.errors import FieldError, Forbidden, InvalidInput, PingtaiError
from services.exchange.access import consents as consents_service
from services.exchange.access import repository as access_repository
from services.exchange.access.cache import GrantSnapshot
from services.exchange.access.dependencies import QueryServices
from services.exchange.access.exceptions import AccessRefused
from services.exchange.access.grants import is_department_caller
from services.exchange.access.masking import mask_value
from services.exchange.access.models import Consent, utcnow
from services.exchange.datasets import ExchangeDataset
from services.exchange.datasets.exceptions import DatasetNotFound
from services.exchange.datasets.models import DatasetField
from services.exchange.datasets.service import check_subject_key
from services.exchange.ledger import AccessRecord

# The scope a token needs to cite a workflow application as the legal basis: the workflow
# service's client holds it (it has checked the application and its applicant).
APPLICATION_BASIS_SCOPE = "exchange:application-basis"
# The department a system holding that scope reads for: the grant checked is this department's,
# and the ledger names it as the organisation that read (workflow fetches materials for the
# department an application is for; its own client belongs to no such department).
ON_BEHALF_OF_HEADER = "X-On-Behalf-Of"
# Whom an application-basis read is for, from the same systems: the person who applied, and
# the enterprise they applied for (an enterprise agent's application). A subject cited under
# an application must be that person's or that enterprise's (their subject references, from
# identity's events) or it is refused and the refusal recorded.
APPLICANT_HEADER = "X-Applicant-Id"
APPLICANT_ORG_HEADER = "X-Applicant-Org-Id"
_APPLICANT_ID = re.compile(r"^[0-9A-Za-z_.:@-]{1,128}$")
_ORG_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
BASIS_KINDS = ("application", "consent", "statute")
_BASIS_REF = re.compile(r"^[^\x00-\x1f\x7f]{1,255}$")
PLAIN = frozenset({"public", "internal"})


@dataclass(frozen=True, slots=True)
class Basis:
    """A legal basis as cited: ``application:<id>``, ``consent:<id>`` or ``statute:<ref>``."""

    kind: str  # application, consent, statute, or none
    ref: str | None


NO_BASIS = Basis("none", None)


def parse_basis(raw: str | None, *, loc: Sequence[str | int]) -> Basis:
    """The basis ``raw`` cites; none when absent; a 422 problem when malformed."""
    if raw is None or raw == "":
        return NO_BASIS
    kind, sep, ref = raw.partition(":")
    if not sep or kind not in BASIS_KINDS or not _BASIS_REF.match(ref):
        message = "must be application:<id>, consent:<id> or statute:<reference>"
        raise InvalidInput(
            f"basis: {message}",
            errors=[FieldError(loc=list(loc), msg=message, type="value_error")],
        )
    return Basis(kind, ref)


@dataclass(frozen=True, slots=True)
class Applicant:
    """Who applied (``X-Applicant-Id``) and for which enterprise (``X-Applicant-Org-Id``)."""

    person_id: str
    org_id: str | None = None


@dataclass(frozen=True, slots=True)
class SubjectQuery:
    """One subject asked for: its key as sent, and the basis cited for it."""

    raw_key: str
    basis: str | None
    loc: tuple[str | int, ...]
    basis_loc: tuple[str | int, ...]


@dataclass(slots=True)
class SubjectOutcome:
    """What became of one subject's query."""

    subject_key: str
    outcome: str  # read, not_found, refused
    record: dict[str, Any] | None = None
    masked_fields: list[str] = field(default_factory=list)
    reason: str | None = None
    detail: str | None = None
    ledger_position: int = 0


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    dataset_id: str
    fields: list[str]
    outcomes: list[SubjectOutcome]


class Refusal(Exception):
    """Why the rules refuse: a short reason (what the ledger keeps) and a sentence."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _check_request(
    dataset: ExchangeDataset,
    retired: bool,
    grant: GrantSnapshot | None,
    asked: Sequence[str] | None,
) -> None:
    now = utcnow()
    if retired:
        raise Refusal("dataset-retired", f"Dataset {dataset.id} is retired.")
    if grant is None:
        raise Refusal("no-grant", "Your organisation holds no grant for this dataset.")
    if grant.revoked_at is not None:
        raise Refusal(
            "grant-revoked",
            f"Grant {grant.id} was revoked at {grant.revoked_at:%Y-%m-%dT%H:%M:%SZ}.",
        )
    if not grant.live_at(now):
        raise Refusal(
            "grant-expired", f"Grant {grant.id} expired at {grant.valid_until:%Y-%m-%dT%H:%M:%SZ}."
        )
    if asked is not None:
        outside = [name for name in asked if name not in grant.fields]
        if outside:
            raise Refusal(
                "fields-not-granted",
                f"Fields not granted to your organisation: {', '.join(outside)}.",
            )


async def _check_basis(
    consents: _ConsentReader,
    *,
    principal: Principal,
    dataset: ExchangeDataset,
    grant: GrantSnapshot,
    basis: Basis,
    subject_ref: str,
    personal: Sequence[str],
    org_id: str,
    on_behalf: bool,
    applicant: Applicant | None,
) -> None:
    if on_behalf and basis.kind != "application":
        raise Refusal(
            "on-behalf-needs-application",
            f"Reading on behalf of a department ({ON_BEHALF_OF_HEADER}) needs an application "
            "as the basis.",
        )
    if basis.kind == "none":
        raise Refusal(
            "no-basis", "A query needs a legal basis: application:, consent: or statute:."
        )
    if basis.kind == "application":
        if not principal.has_scope(APPLICATION_BASIS_SCOPE):
            raise Refusal(
                "application-basis-not-allowed",
                f"Citing an application needs the {APPLICATION_BASIS_SCOPE} scope (workflow's).",
            )
        if applicant is None:
            raise Refusal(
                "applicant-required",
                f"An application is a basis only with its applicant named ({APPLICANT_HEADER}, "
                f"and {APPLICANT_ORG_HEADER} for an enterprise's application).",
            )
        own = await consents.applicant_refs(applicant)
        if not own:
            raise Refusal(
                "applicant-unknown",
                "The exchange has not learnt of the applicant (or their enterprise) yet.",
            )
        if subject_ref not in own:
            raise Refusal(
                "not-the-applicant",
                "An application is a basis only for the applicant's own records (or their "
                "enterprise's); this subject is someone else.",
            )
        return
    if basis.kind == "statute":
        if personal and basis.ref not in grant.statutes:
            raise Refusal(
                "statute-not-in-grant",
                "A statute covers personal fields only when the grant names it; ask with "
                f"consent or narrow fields= to leave out {', '.join(personal)}.",
            )
        return
    consent = await consents.consent(basis.ref or "")
    if consent is None or consent.subject_ref != subject_ref or consent.grantee_org_id != org_id:
        raise Refusal("consent-not-valid", "The consent cited is not this subject's for you.")
    if consent.status == "revoked":
        raise Refusal("consent-revoked", f"Consent {consent.id} was revoked.")
    if not consents_service.is_live(consent, utcnow()):
        raise Refusal("consent-expired", f"Consent {consent.id} is not in force.")
    if not consents_service.covers(consent, dataset_id=dataset.id, fields=personal):
        raise Refusal(
            "consent-does-not-cover",
            f"Consent {consent.id} does not cover this dataset's fields {', '.join(personal)}.",
        )


def _mask(
    record: dict[str, Any], fields: Sequence[DatasetField], grant: GrantSnapshot
) -> tuple[dict[str, Any], list[str]]:
    shown: dict[str, Any] = {}
    masked: list[str] = []
    for spec in fields:
        value = record.get(spec.name)
        if spec.sensitivity in PLAIN or spec.name in grant.unmasked_fields:
            shown[spec.name] = value
        else:
            shown[spec.name] = mask_value(spec, value)
            masked.append(spec.name)
    return shown, masked


async def query(
    *,
    services: QueryServices,
    principal: Principal,
    dataset_id: str,
    subjects: Sequence[SubjectQuery],
    purpose: str,
    fields: Sequence[str] | None,
    on_behalf_of: str | None = None,
    applicant: Applicant | None = None,
) -> QueryAnswer:
    """Decide, read, mask and record the query of each subject; refusals are recorded too.

    Reads happen in short units of work of their own (none at all when the grant and dataset
    are cached and the basis is not a consent), all ended before the ledger's group commit is
    awaited: a request waiting for its entry must hold no pooled connection, or waiting
    requests could hold every one and leave the ledger's writer none to commit with. From
    here to its append the query is counted as on its way to the ledger, whose writer waits
    briefly for such siblings before it commits (the commit delay, docs/exchange-ledger.md).
    """
    with services.ledger.approaching() as approach:
        cache = services.cache
        if not is_department_caller(principal) or principal.org is None:
            raise Forbidden(
                "Records are read by departments and their systems: an officer or department admin "
                "acting for their organisation, or a client with an organisation."
            )
        org_id = acting_org(principal, on_behalf_of)
        dataset = await cache.dataset(dataset_id)
        if dataset is None:
            raise DatasetNotFound(f"No dataset {dataset_id}.")
        keys: list[str] = []
        bases: list[Basis] = []
        errors: list[FieldError] = []
        for asked in subjects:
            try:
                keys.append(check_subject_key(dataset.subject_key_kind, asked.raw_key))
            except ValueError as error:
                errors.append(FieldError(loc=list(asked.loc), msg=str(error), type="value_error"))
                keys.append(asked.raw_key)
            bases.append(parse_basis(asked.basis, loc=asked.basis_loc))
        if errors:
            raise InvalidInput(f"{len(errors)} subject key(s) are not valid.", errors=errors)
        kind = dataset.subject_key_kind
        refs = [services.subject_refs.ref(kind, key) for key in keys]
        request_id = current_request_id()

        def entry(
            index: int, outcome: str, names: Sequence[str], reason: str | None
        ) -> AccessRecord:
            return AccessRecord(
                actor=principal.sub,
                client_id=principal.client_id,
                actor_org_id=org_id,
                dataset_id=dataset.id,
                owner_org_id=dataset.owner_org_id,
                subject_ref=refs[index],
                fields=tuple(names),
                purpose=purpose,
                basis_kind=bases[index].kind,
                basis_ref=bases[index].ref,
                outcome=outcome,
                reason=reason,
                request_id=request_id,
            )

        grant = await cache.latest(org_id=org_id, dataset_id=dataset.id)
        try:
            _check_request(dataset, cache.is_retired(dataset), grant, fields)
        except Refusal as refusal:
            asked_fields = (
                list(fields) if fields is not None else list(grant.fields if grant else ())
            )
            receipts = await services.ledger.append_many(
                [entry(i, "refused", asked_fields, refusal.reason) for i in range(len(keys))],
                approach=approach,
            )
            raise AccessRefused(
                refusal.detail,
                reason=refusal.reason,
                ledger_positions=[r.position for r in receipts],
            ) from None
        # _check_request refuses (Refusal, handled above) when there is no granted grant.
        assert grant is not None
        wanted = set(fields) if fields is not None else set(grant.fields)
        specs = [f for f in dataset.fields if f.name in wanted]
        names = [f.name for f in specs]
        personal = [f.name for f in specs if f.sensitivity == "personal"]

        outcomes: list[SubjectOutcome] = []
        allowed: list[int] = []
        async with _ConsentReader(services) as consents:
            for index, key in enumerate(keys):
                try:
                    await _check_basis(
                        consents,
                        principal=principal,
                        dataset=dataset,
                        grant=grant,
                        basis=bases[index],
                        subject_ref=refs[index],
                        personal=personal,
                        org_id=org_id,
                        on_behalf=on_behalf_of is not None,
                        applicant=applicant,
                    )
                except Refusal as refusal:
                    outcomes.append(
                        SubjectOutcome(key, "refused", reason=refusal.reason, detail=refusal.detail)
                    )
                    continue
                outcomes.append(SubjectOutcome(key, "read"))
                allowed.append(index)

        found: dict[str, dict[str, Any]] = {}
        failure: PingtaiError | None = None
        if allowed:
            try:
                found = await services.source.fetch(
                    dataset,
                    [keys[i] for i in allowed],
                    fields=names,
                    request_id=request_id,
                    client_id=principal.client_id,
                )
            except PingtaiError as error:
                failure = error
        records: list[AccessRecord] = []
        for index, outcome in enumerate(outcomes):
            if outcome.outcome == "refused":
                records.append(entry(index, "refused", names, outcome.reason))
                continue
            if failure is not None:
                # Allowed, but nothing was delivered: the source failed or its answer was refused.
                records.append(entry(index, "failed", names, f"source-failed: {failure.code}"))
                continue
            record = found.get(outcome.subject_key)
            if record is None:
                outcome.outcome = "not_found"
                records.append(entry(index, "granted", names, "not-found"))
                continue
            outcome.record, outcome.masked_fields = _mask(record, specs, grant)
            records.append(entry(index, "granted", names, None))
        receipts = await services.ledger.append_many(records, approach=approach)
        for outcome, receipt in zip(outcomes, receipts, strict=True):
            outcome.ledger_position = receipt.position
        if failure is not None:
            raise failure
        return QueryAnswer(dataset_id=dataset.id, fields=names, outcomes=outcomes)


class _ConsentReader:
    """A session for the consents the basis checks read, opened only if one is cited and
    closed before anything is appended to the ledger."""

    def __init__(self, services: QueryServices) -> None:
        self._services = services
        self._session: AsyncSession | None = None
        self._applicant_refs: frozenset[str] | None = None

    async def __aenter__(self) -> _ConsentReader:
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _reader(self) -> AsyncSession:
        if self._session is None:
            self._session = self._services.database.sessionmaker()
        return self._session

    async def consent(self, consent_id: str) -> Consent | None:
        """The consent with ``consent_id``, if any."""
        return await access_repository.get_consent(self._reader(), consent_id=consent_id)

    async def applicant_refs(self, applicant: Applicant) -> frozenset[str]:
        """The subject references of the applicant and of the enterprise they applied for,
        as learnt from identity's events (held by the grant cache for its time to live)."""
        if self._applicant_refs is None:
            cache = self._services.cache
            refs = {await cache.subject_ref("person", applicant.person_id)}
            if applicant.org_id is not None:
                refs.add(await cache.subject_ref("organisation", applicant.org_id))
            self._applicant_refs = frozenset(ref for ref in refs if ref is not None)
        return self._applicant_refs


def acting_org(principal: Principal, on_behalf_of: str | None) -> str:
    """The organisation whose grant decides and whom the ledger names: the caller's own, or
    the department a system holding ``exchange:application-basis`` reads for."""
    assert principal.org is not None
    if on_behalf_of is None:
        return principal.org
    if principal.acr != 0 or not principal.has_scope(APPLICATION_BASIS_SCOPE):
        raise Forbidden(
            f"{ON_BEHALF_OF_HEADER} is honoured only for a system holding the "
            f"{APPLICATION_BASIS_SCOPE} scope (workflow's client)."
        )
    if not _ORG_ID.match(on_behalf_of):
        raise InvalidInput.for_field(
            ON_BEHALF_OF_HEADER, "must be an organisation id", location="header"
        )
    return on_behalf_of


def applicant_of(
    principal: Principal, person_id: str | None, org_id: str | None
) -> Applicant | None:
    """The applicant named by ``X-Applicant-Id`` / ``X-Applicant-Org-Id``: honoured only from a
    system holding ``exchange:application-basis`` (403 from anyone else), 422 when malformed."""
    if person_id is None and org_id is None:
        return None
    if principal.acr != 0 or not principal.has_scope(APPLICATION_BASIS_SCOPE):
        raise Forbidden(
            f"{APPLICANT_HEADER} and {APPLICANT_ORG_HEADER} are honoured only for a system "
            f"holding the {APPLICATION_BASIS_SCOPE} scope (workflow's client)."
        )
    if person_id is None or not _APPLICANT_ID.match(person_id):
        raise InvalidInput.for_field(
            APPLICANT_HEADER, "must be the applicant's user id", location="header"
        )
    if org_id is not None and not _ORG_ID.match(org_id):
        raise InvalidInput.for_field(
            APPLICANT_ORG_HEADER, "must be an organisation id", location="header"
        )
    return Applicant(person_id, org_id)


def refused_single(outcome: SubjectOutcome) -> AccessRefused:
    """The problem for a single-subject query the basis check refused (already recorded)."""
    return AccessRefused(
        outcome.detail, reason=outcome.reason, ledger_positions=[outcome.ledger_position]
    )
