"""The authorisation matrix (OWASP API Security Top 10: BOLA, BFLA): every endpoint of every
part, what each caller gets. Columns and ownership cases: ``callers.py``; row shape:
``table.py``. docs/authorisation.md publishes this table (``python -m tests.authz.publish``).

Reading a row: ``ok`` callers are allowed; ``hidden`` callers get 404 (the resource is not
revealed to them); the anonymous caller otherwise gets 401 and any other caller 403.
"""

from __future__ import annotations

from services.evaluation.index.defaults import DEFAULT_SYSTEM
from tests.authz.table import Row
from tests.authz.world_workflow import CALENDAR
from tests.authz.worlds import in_days
from tests.identity.test_people_and_organisations import registration

PARTS = ("identity", "catalog", "exchange", "workflow", "evaluation", "gateway")

# Owners of department A's resources (catalog's definitions, exchange's grants...).
ADMINS_A = "dept_admin:same-dept platform_admin"
# The owner department's people (drafts are theirs to see).
DEPT_A = "officer:same-dept dept_admin:same-dept platform_admin"
# Any department's officers and admins, and platform admins (lists of drafts).
STAFF = (
    "officer:same-dept officer:other-dept dept_admin:same-dept dept_admin:other-dept platform_admin"
)
# Everyone outside department A who signs in (a draft is hidden from them).
NOT_DEPT_A = "* !officer:same-dept !dept_admin:same-dept !platform_admin"

# Every part's probes, metrics and documents, public (the metrics too: DESIGN, "HTTP
# conventions"; the gateway forwards /api/<part>/metrics like any path of a part).
HEALTH = [
    Row(part, "GET", path, ok="public",
        accepted=(503,) if path == "/readyz" else (),
        note="503 too when a dependency's check times out (a loaded machine)"
        if path == "/readyz" else "")
    for part in PARTS
    for path in ("/healthz", "/readyz", "/metrics", "/openapi.json", "/docs",
                 "/docs/oauth2-redirect")
]  # fmt: skip


def _named(prefix: str) -> dict[str, object]:
    return {"name": f"{prefix} renamed"}


CATALOG = [
    # Datasets (政务信息资源目录): department A's admins and platform admins write.
    Row("catalog", "POST", "/v1/datasets", ok=ADMINS_A,
        body=lambda t: t["world"].dataset_body()),
    Row("catalog", "GET", "/v1/datasets", ok="public"),
    Row("catalog", "GET", "/v1/datasets/{dataset_id}", target="dataset", ok="public"),
    Row("catalog", "GET", "/v1/datasets/{dataset_id}", target="dataset_draft", ok=DEPT_A,
        hidden=f"anonymous {NOT_DEPT_A}"),
    Row("catalog", "PATCH", "/v1/datasets/{dataset_id}", target="dataset_draft", ok=ADMINS_A,
        hidden=NOT_DEPT_A, body=lambda t: _named("数据集")),
    Row("catalog", "POST", "/v1/datasets/{dataset_id}/publish", target="dataset_draft",
        fresh=True, ok=ADMINS_A, hidden=NOT_DEPT_A),
    Row("catalog", "POST", "/v1/datasets/{dataset_id}/retire", target="dataset", fresh=True,
        ok=ADMINS_A),
    Row("catalog", "GET", "/v1/datasets/{dataset_id}/versions", target="dataset", ok="public"),
    Row("catalog", "GET", "/v1/datasets/{dataset_id}/versions/{number}", target="dataset",
        ok="public"),
    # Service items (政务服务事项).
    Row("catalog", "POST", "/v1/items", ok=ADMINS_A, body=lambda t: t["world"].item_body()),
    Row("catalog", "GET", "/v1/items", ok="public"),
    Row("catalog", "GET", "/v1/item-drafts", ok=STAFF,
        note="a department's officers and admins: their own drafts; anyone else 403"),
    Row("catalog", "GET", "/v1/items/{item_id}", target="item", ok="public"),
    Row("catalog", "GET", "/v1/items/{item_id}", target="item_draft", ok=DEPT_A,
        hidden=f"anonymous {NOT_DEPT_A}", note="drafts: one rule with datasets' and bundles'"),
    Row("catalog", "PATCH", "/v1/items/{item_id}", target="item_draft", ok=ADMINS_A,
        body=lambda t: _named("事项")),
    Row("catalog", "POST", "/v1/items/{item_id}/publish", target="item_draft", fresh=True,
        ok=ADMINS_A),
    Row("catalog", "POST", "/v1/items/{item_id}/retire", target="item", fresh=True,
        ok=ADMINS_A),
    Row("catalog", "GET", "/v1/items/{item_id}/versions", target="item", ok="public"),
    Row("catalog", "GET", "/v1/items/{item_id}/versions/{version}", target="item", ok="public"),
    # One-thing bundles (一件事).
    Row("catalog", "POST", "/v1/bundles", target="items", ok=ADMINS_A,
        body=lambda t: {"code": f"zj-b-{id(t)}", "name": "一件事", "item_ids": t["item_ids"],
                        "owner_org_id": t["ids"].dept_a}),  # fmt: skip
    Row("catalog", "GET", "/v1/bundles", ok="public"),
    Row("catalog", "GET", "/v1/bundle-drafts", ok=STAFF,
        note="as /v1/item-drafts: the caller's department's bundle drafts"),
    Row("catalog", "GET", "/v1/bundles/{bundle_id}", target="bundle", ok="public"),
    Row("catalog", "GET", "/v1/bundles/{bundle_id}", target="bundle_draft", ok=DEPT_A,
        hidden=f"anonymous {NOT_DEPT_A}", note="drafts: one rule with datasets' and items'"),
    Row("catalog", "PATCH", "/v1/bundles/{bundle_id}", target="bundle_draft", ok=ADMINS_A,
        body=lambda t: _named("一件事")),
    Row("catalog", "POST", "/v1/bundles/{bundle_id}/publish", target="bundle_draft", fresh=True,
        ok=ADMINS_A),
    Row("catalog", "POST", "/v1/bundles/{bundle_id}/retire", target="bundle", fresh=True,
        ok=ADMINS_A),
    Row("catalog", "GET", "/v1/bundles/{bundle_id}/versions", target="bundle", ok="public"),
    Row("catalog", "GET", "/v1/bundles/{bundle_id}/versions/{version}", target="bundle",
        ok="public"),
]  # fmt: skip

AUTHORIZE_KEYS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def _authorize(t: dict[str, object]) -> dict[str, object]:
    return {key: t[key] for key in AUTHORIZE_KEYS}


_serial = iter(range(10**6))
# Every person of the matrix has an account in identity; a system's sub is its client id.
SYSTEMS = "service:same-dept service:other-dept"
PEOPLE = f"* !{SYSTEMS.replace(' ', ' !')}"
NOT_A_PERSON = "a system's sub names no person: 404 person-not-found"

IDENTITY = [
    # OpenID Connect: clients authenticate themselves (or a person signs in with a password);
    # a bearer token neither opens nor closes these endpoints.
    Row("identity", "GET", "/.well-known/openid-configuration", ok="public"),
    Row("identity", "GET", "/.well-known/jwks.json", ok="public"),
    Row("identity", "GET", "/oauth2/authorize", target="public_client", ok="public",
        query=_authorize, note="the sign-in page"),
    Row("identity", "POST", "/oauth2/authorize", target="public_client", ok="public",
        form=_authorize),
    Row("identity", "POST", "/oauth2/authorize/signin", anonymous=400, refused=400,
        form=lambda t: {"username": "13800000001", "password": "x"},
        note="400 to all: no sign-in in progress (a bearer token is no password)"),
    Row("identity", "POST", "/oauth2/authorize/organisation", anonymous=400, refused=400,
        form=lambda t: {"org_id": t["ids"].dept_a},
        note="400 to all: no sign-in in progress"),
    Row("identity", "POST", "/oauth2/token", anonymous=401, refused=401,
        form=lambda t: {"grant_type": "client_credentials"},
        note="401 invalid_client to all: a bearer token is no client authentication"),
    Row("identity", "POST", "/oauth2/revoke", anonymous=401, refused=401,
        form=lambda t: {"token": "x"}, note="client authentication required (RFC 7009)"),
    Row("identity", "POST", "/oauth2/introspect", anonymous=401, refused=401,
        form=lambda t: {"token": "x"}, note="confidential clients only (RFC 7662)"),
    Row("identity", "GET", "/oauth2/logout", ok="public",
        note="the confirmation page: the browser's own session is signed out, never a bearer's"),
    Row("identity", "POST", "/oauth2/logout", ok="public", form=lambda t: {},
        note="the confirmation page again: without the browser's CSRF-bound form, no one is "
             "signed out"),
    Row("identity", "GET", "/oauth2/userinfo", refused=401,
        note="401 to all here: userinfo answers only tokens identity itself issued (its grants)"),
    Row("identity", "POST", "/oauth2/userinfo", refused=401,
        note="401 to all here: userinfo answers only tokens identity itself issued (its grants)"),
    # The client registry: platform admins.
    Row("identity", "POST", "/v1/clients", ok="platform_admin",
        body=lambda t: {"name": "系统", "grant_types": ["client_credentials"]}),
    Row("identity", "GET", "/v1/clients", ok="platform_admin"),
    Row("identity", "GET", "/v1/clients/{client_id}", target="client", ok="platform_admin"),
    Row("identity", "PATCH", "/v1/clients/{client_id}", target="client", ok="platform_admin",
        body=lambda t: {"name": "改名"}),
    Row("identity", "POST", "/v1/clients/{client_id}/secret", target="client", fresh=True,
        ok="platform_admin"),
    Row("identity", "POST", "/v1/clients/{client_id}/disable", target="client", fresh=True,
        ok="platform_admin"),
    # People.
    Row("identity", "POST", "/v1/register", ok="public",
        body=lambda t: registration(500 + next(_serial)),
        note="202 alike for everyone, whether or not the person exists"),
    Row("identity", "GET", "/v1/me", ok=PEOPLE, hidden=SYSTEMS, note=NOT_A_PERSON),
    Row("identity", "PATCH", "/v1/me", ok=PEOPLE, hidden=SYSTEMS, note=NOT_A_PERSON,
        body=lambda t: {"name": "新名字"}),
    Row("identity", "POST", "/v1/me/email/confirmation", ok=PEOPLE, hidden=SYSTEMS,
        accepted=(422,), body=lambda t: {"code": "123456"},
        note="422 to every person: no e-mail change is pending, so no code is right"),
    Row("identity", "GET", "/v1/users",
        ok="dept_admin:same-dept dept_admin:other-dept platform_admin",
        note="a department admin finds their own department's members only"),
    Row("identity", "GET", "/v1/users/{user_id}", target="member",
        ok="dept_admin:same-dept platform_admin", hidden="* !dept_admin:same-dept !platform_admin",
        note="a department A officer: their department's admin, platform admins"),
    Row("identity", "GET", "/v1/users/{user_id}", target="self",
        ok="citizen:own platform_admin", hidden="* !citizen:own !platform_admin"),
    Row("identity", "POST", "/v1/users/{user_id}/verification", target="member",
        ok="platform_admin", body=lambda t: {"level": 2, "method": "public-security-check"},
        note="or a token with scope identity:verify (a department's system or officer)"),
    # Organisations and roles.
    Row("identity", "POST", "/v1/organisations", ok="platform_admin",
        body=lambda t: t["world"].organisation_body()),
    Row("identity", "GET", "/v1/organisations", ok="*"),
    Row("identity", "GET", "/v1/organisations/{org_id}", target="dept_a", ok="*"),
    Row("identity", "PATCH", "/v1/organisations/{org_id}", target="dept_a",
        ok="dept_admin:same-dept platform_admin", body=lambda t: {"name": "改名的局"}),
    Row("identity", "GET", "/v1/organisations/{org_id}/memberships", target="dept_a",
        ok="dept_admin:same-dept platform_admin"),
    Row("identity", "GET", "/v1/organisations/{org_id}/memberships", target="ent_e",
        ok="agent:own platform_admin"),
    Row("identity", "POST", "/v1/memberships", target="member",
        ok="dept_admin:same-dept platform_admin",
        body=lambda t: {"user_id": t["user_id"], "org_id": t["ids"].dept_a, "role": "dept_admin"}),
    Row("identity", "DELETE", "/v1/memberships/{membership_id}", target="membership", fresh=True,
        ok="dept_admin:same-dept platform_admin",
        hidden="* !dept_admin:same-dept !platform_admin",
        note="404 to anyone who could not have granted it"),
    Row("identity", "GET", "/v1/regions/{code}", query={}, ok="public", target="region"),
    Row("identity", "GET", "/v1/regions/{code}/tree", ok="public", target="region"),
]  # fmt: skip

# Who manages an organisation's gateway applications (and their keys).
MANAGERS = "dept_admin:same-dept dept_admin:other-dept agent:own agent:other platform_admin"
NOT_MANAGERS = f"* {' '.join('!' + c for c in MANAGERS.split())}"


def _app_rows(target: str, owner: str, outsiders: str) -> list[Row]:
    """An application's endpoints: its organisation's managers and platform admins; other
    organisations' managers do not learn it exists; non-managers are refused outright."""
    ok = f"{owner} platform_admin"
    return [
        Row(
            "gateway",
            "GET",
            "/v1/applications/{application_id}",
            target=target,
            ok=ok,
            hidden=outsiders,
        ),
        Row(
            "gateway",
            "POST",
            "/v1/applications/{application_id}/keys",
            target=target,
            ok=ok,
            hidden=outsiders,
            body=lambda t: {"plan_id": t["plan_id"]},
        ),
        Row(
            "gateway",
            "GET",
            "/v1/applications/{application_id}/keys",
            target=target,
            ok=ok,
            hidden=outsiders,
        ),
        Row(
            "gateway",
            "DELETE",
            "/v1/applications/{application_id}/keys/{key_id}",
            target=target,
            fresh=True,
            ok=ok,
            hidden=outsiders,
        ),
        Row(
            "gateway",
            "GET",
            "/v1/applications/{application_id}/usage",
            target=target,
            ok=ok,
            hidden=outsiders,
        ),
    ]


GATEWAY = [
    Row("gateway", "GET", "/v1/apis", ok="public"),
    Row("gateway", "GET", "/developers", ok="public", note="the developer portal's page"),
    Row("gateway", "GET", "/v1/plans", ok="public", note="unpublished plans: platform admins"),
    Row("gateway", "POST", "/v1/plans", ok="platform_admin",
        body=lambda t: t["world"].plan_body()),
    Row("gateway", "GET", "/v1/plans/{plan_id}", target="plan", ok="public"),
    Row("gateway", "GET", "/v1/plans/{plan_id}", target="plan_hidden", ok="platform_admin",
        hidden="public !platform_admin"),
    Row("gateway", "PATCH", "/v1/plans/{plan_id}", target="plan", ok="platform_admin",
        body=lambda t: {"name": "改名"}),
    Row("gateway", "POST", "/v1/applications", ok="dept_admin:same-dept platform_admin",
        body=lambda t: {"name": f"应用 {next(_serial)}", "org_id": t["ids"].dept_a},
        note="for department A: another organisation's manager is refused"),
    Row("gateway", "GET", "/v1/applications", ok=MANAGERS),
    *_app_rows("app_a", "dept_admin:same-dept", "dept_admin:other-dept agent:own agent:other"),
    *_app_rows("app_e", "agent:own", "dept_admin:same-dept dept_admin:other-dept agent:other"),
]  # fmt: skip

# Department A owns the dataset; department B holds a grant on it (or asks for one).
DEPTS = (
    "officer:same-dept officer:other-dept dept_admin:same-dept dept_admin:other-dept "
    "service:same-dept service:other-dept"
)
DEPT_B = "officer:other-dept dept_admin:other-dept service:other-dept"
SUBJECTS = "citizen:own citizen:other agent:own agent:other"
AUDIT = "auditor platform_admin"
BASIS = "statute:《浙江省公共数据条例》第二十条"
READS = (
    "a department with a grant (B) and a basis; the owner (A) holds no grant: its own "
    "records are read through history, not queries"
)

NO_DATA = (
    "people other than citizens and agents, and systems, have no data of their own "
    "here: 403 subject-unknown before any lookup"
)

EXCHANGE = [
    # Record queries: a department with a grant (B), the owner (A); each read is in the ledger.
    Row("exchange", "GET", "/v1/datasets/{dataset_id}/records/{subject_key}", target="record",
        ok=DEPT_B, query={"purpose": "核验身份", "basis": BASIS, "fields": "region"},
        note=READS),
    Row("exchange", "POST", "/v1/datasets/{dataset_id}/records:batch", target="record",
        ok=DEPT_B, note=READS, body=lambda t: {
            "purpose": "核验身份", "basis": BASIS, "fields": ["region"],
            "subjects": [{"subject_key": t["subject_key"]}]}),
    Row("exchange", "GET", "/v1/datasets/{dataset_id}/records/{subject_key}/history",
        target="record", ok="officer:same-dept dept_admin:same-dept platform_admin"),
    Row("exchange", "POST", "/v1/datasets/{dataset_id}/records", target="record",
        ok="officer:same-dept dept_admin:same-dept platform_admin",
        content=b'{"resident_id": "330106198803121234", "name": "x"}\n',
        content_type="application/x-ndjson"),
    # Grants (共享授权).
    Row("exchange", "POST", "/v1/grants", ok=DEPTS, body=lambda t: {
        "dataset_id": "ds-authz-people", "fields": ["region"], "purpose": "核验",
        "valid_until": in_days(30)}),
    Row("exchange", "GET", "/v1/grants", ok=f"{DEPTS} {AUDIT}"),
    Row("exchange", "GET", "/v1/grants/{grant_id}", target="pending", ok=f"{DEPTS} {AUDIT}",
        hidden=f"{SUBJECTS} evaluator"),
    Row("exchange", "POST", "/v1/grants/{grant_id}/approve", target="pending", fresh=True,
        ok="dept_admin:same-dept platform_admin", hidden=f"{SUBJECTS} evaluator",
        body=lambda t: {}),
    Row("exchange", "POST", "/v1/grants/{grant_id}/refuse", target="pending", fresh=True,
        ok="dept_admin:same-dept platform_admin", hidden=f"{SUBJECTS} evaluator",
        body=lambda t: {"reason": "不符合条件"}),
    Row("exchange", "POST", "/v1/grants/{grant_id}/revoke", target="pending", fresh=True,
        ok=f"dept_admin:same-dept platform_admin {DEPT_B}", hidden=f"{SUBJECTS} evaluator",
        body=lambda t: {}),
    # Consents (授权同意): the subject's own.
    Row("exchange", "POST", "/v1/consents", ok="citizen:own citizen:other agent:own agent:other",
        body=lambda t: t["world"].consent_body(t["caller"])),
    Row("exchange", "GET", "/v1/consents", ok="citizen:own citizen:other agent:own agent:other"),
    Row("exchange", "GET", "/v1/consents/{consent_id}", target="consent", ok="citizen:own",
        hidden="citizen:other agent:own agent:other", note=NO_DATA),
    Row("exchange", "POST", "/v1/consents/{consent_id}/revoke", target="consent", fresh=True,
        ok="citizen:own", hidden="citizen:other agent:own agent:other", note=NO_DATA),
    Row("exchange", "GET", "/v1/me/accesses", ok=SUBJECTS, note=NO_DATA),
    # The exchange's read copy of the catalogue, and open data (开放数据).
    Row("exchange", "GET", "/v1/datasets", ok="public", note="anonymous: open datasets only"),
    Row("exchange", "GET", "/v1/datasets/{dataset_id}", target="record", ok="*",
        hidden="anonymous"),
    Row("exchange", "GET", "/v1/datasets/{dataset_id}", target="open", ok="public"),
    Row("exchange", "GET", "/v1/open/datasets", ok="public"),
    Row("exchange", "GET", "/v1/open/datasets/{dataset_id}", target="open", ok="public"),
    Row("exchange", "GET", "/v1/open/datasets/{dataset_id}", target="record",
        hidden="public", note="not open: 404 to everyone"),
    Row("exchange", "GET", "/v1/open/datasets/{dataset_id}/records", target="open", ok="public"),
    Row("exchange", "GET", "/v1/open/datasets/{dataset_id}/records.csv", target="open",
        ok="public"),
    # The tamper-evident ledger (存证).
    Row("exchange", "GET", "/v1/ledger/keys", ok="public"),
    Row("exchange", "GET", "/v1/ledger/verification", ok=AUDIT),
    Row("exchange", "GET", "/v1/ledger/entries", ok=AUDIT),
    Row("exchange", "GET", "/v1/ledger/checkpoints", ok=AUDIT),
]  # fmt: skip

APPLICANTS = "citizen:own citizen:other agent:own agent:other"
# Who follows the citizen's application: they, the department handling it, platform admins.
FOLLOWERS = "citizen:own officer:same-dept dept_admin:same-dept platform_admin"
ENTERPRISE_FOLLOWERS = "agent:own officer:same-dept dept_admin:same-dept platform_admin"
OFFICERS = "officer:same-dept officer:other-dept dept_admin:same-dept dept_admin:other-dept"
OFFICERS_A = "officer:same-dept dept_admin:same-dept"
# Webhooks: an organisation's admins or agents (another organisation's: 404).
HOOKS = "dept_admin:same-dept dept_admin:other-dept agent:own agent:other"
HOOK_OUTSIDERS = "dept_admin:other-dept agent:own agent:other"

WORKFLOW = [
    # Applications (办件): the applicant's own.
    Row("workflow", "POST", "/v1/applications", ok=APPLICANTS,
        body=lambda t: t["world"].application_body()),
    Row("workflow", "GET", "/v1/applications", ok="*",
        note="the caller's own (an agent's: also the enterprise's); others get an empty list"),
    Row("workflow", "GET", "/v1/applications/{application_id}", target="application",
        ok=FOLLOWERS, hidden=f"* !{FOLLOWERS.replace(' ', ' !')}"),
    Row("workflow", "GET", "/v1/applications/{application_id}", target="enterprise_application",
        ok=ENTERPRISE_FOLLOWERS, hidden=f"* !{ENTERPRISE_FOLLOWERS.replace(' ', ' !')}",
        note="enterprise E's, made by another of its agents: E's agents see it"),
    Row("workflow", "GET", "/v1/applications/{application_id}/events",
        target="enterprise_application", stream=True, ok=ENTERPRISE_FOLLOWERS,
        hidden=f"* !{ENTERPRISE_FOLLOWERS.replace(' ', ' !')}"),
    Row("workflow", "PATCH", "/v1/applications/{application_id}", target="draft",
        ok="citizen:own", hidden="* !citizen:own", body=lambda t: {"form": t["world"].item_form()}),
    Row("workflow", "POST", "/v1/applications/{application_id}/submit", target="draft",
        fresh=True, ok="citizen:own", hidden="* !citizen:own"),
    Row("workflow", "POST", "/v1/applications/{application_id}/withdraw", target="application",
        fresh=True, ok="citizen:own", hidden="* !citizen:own", body=lambda t: {}),
    Row("workflow", "POST", "/v1/applications/{application_id}/supplement",
        target="supplementing", ok="citizen:own", hidden="* !citizen:own",
        body=lambda t: {"form": {"name": "张伟"}, "comment": "已补正"}),
    Row("workflow", "POST", "/v1/applications/{application_id}/materials/{material}",
        target="upload_draft", ok="citizen:own", hidden="* !citizen:own",
        content=b"%PDF-1.7 authz",
        content_type="application/pdf"),
    # The officer inbox: department A's tasks.
    Row("workflow", "GET", "/v1/tasks", ok=OFFICERS),
    Row("workflow", "GET", "/v1/tasks/{task_id}", target="application", ok=OFFICERS_A,
        hidden="officer:other-dept dept_admin:other-dept"),
    Row("workflow", "POST", "/v1/tasks/{task_id}/claim", target="application", ok=OFFICERS_A,
        hidden="officer:other-dept dept_admin:other-dept"),
    Row("workflow", "POST", "/v1/tasks/{task_id}/unclaim", target="claimed", ok=OFFICERS_A,
        hidden="officer:other-dept dept_admin:other-dept",
        note="its claimant, or a department admin"),
    Row("workflow", "POST", "/v1/tasks/{task_id}/actions", target="application", fresh=True,
        ok=OFFICERS_A, hidden="officer:other-dept dept_admin:other-dept",
        body=lambda t: {"decision": "accept", "comment": "受理"}),
    # The working-day calendar.
    Row("workflow", "GET", "/v1/calendar/{year}", target="year", ok="*"),
    Row("workflow", "PUT", "/v1/calendar/{year}", target="year", ok="platform_admin",
        body=lambda t: CALENDAR),
    # Live progress (server-sent events).
    Row("workflow", "GET", "/v1/applications/{application_id}/events", target="application",
        stream=True, ok=FOLLOWERS, hidden=f"* !{FOLLOWERS.replace(' ', ' !')}"),
    Row("workflow", "GET", "/v1/me/events", stream=True, ok="*"),
    Row("workflow", "GET", "/v1/inbox/events", stream=True, ok=OFFICERS),
    # Webhooks: an organisation's subscriptions.
    Row("workflow", "POST", "/v1/webhooks", ok=HOOKS, body=lambda t: t["world"].webhook_body()),
    Row("workflow", "GET", "/v1/webhooks", ok=HOOKS),
    Row("workflow", "GET", "/v1/webhooks/{webhook_id}", target="webhook",
        ok="dept_admin:same-dept platform_admin", hidden=HOOK_OUTSIDERS),
    Row("workflow", "DELETE", "/v1/webhooks/{webhook_id}", target="webhook", fresh=True,
        ok="dept_admin:same-dept platform_admin", hidden=HOOK_OUTSIDERS),
    Row("workflow", "GET", "/v1/webhooks/{webhook_id}/deliveries", target="webhook",
        ok="dept_admin:same-dept platform_admin", hidden=HOOK_OUTSIDERS),
]  # fmt: skip

# Who reads department A's figures, reviews and cases: its people, and the platform-wide
# readers (evaluators and auditors see reviews and cases anonymised).
READERS_A = "officer:same-dept dept_admin:same-dept evaluator auditor platform_admin"
READERS = f"{READERS_A} officer:other-dept dept_admin:other-dept"
SCOPE_A = {"scope": "department:" + "d1" * 16, "period": "2026-11"}
# Reviews and cases of the citizen's applications with department A.
REVIEW_READERS = f"citizen:own {READERS_A}"
REVIEW_HIDDEN = (
    f"citizen:other agent:own agent:other officer:other-dept dept_admin:other-dept {SYSTEMS}"
)

EVALUATION = [
    # Reviews (好差评): the applicant writes; department A and the readers see.
    Row("evaluation", "POST", "/v1/reviews", ok="citizen:own",
        hidden="citizen:other agent:own agent:other",
        body=lambda t: {"application_id": "app3", "overall": 4, "speed": 4, "attitude": 4,
                        "clarity": 4, "convenience": 4},
        note="another's application: 404 application-not-found (never says whose)"),
    Row("evaluation", "GET", "/v1/reviews", ok=PEOPLE, note="a system has no reviews to see"),
    Row("evaluation", "GET", "/v1/reviews/{review_id}", target="review", ok=REVIEW_READERS,
        hidden=REVIEW_HIDDEN),
    Row("evaluation", "PATCH", "/v1/reviews/{review_id}", target="review", ok="citizen:own",
        hidden="* !citizen:own", body=lambda t: {"overall": 5},
        note="only its author: 404 'no review of yours' to everyone else"),
    # Rectification cases (差评整改).
    Row("evaluation", "GET", "/v1/cases", ok=PEOPLE, note="a system has no cases to see"),
    Row("evaluation", "GET", "/v1/cases/{case_id}", target="open_case", ok=REVIEW_READERS,
        hidden=REVIEW_HIDDEN),
    Row("evaluation", "POST", "/v1/cases/{case_id}/reply", target="open_case",
        ok="officer:same-dept dept_admin:same-dept platform_admin", hidden=REVIEW_HIDDEN,
        body=lambda t: {"reply": "已核实", "fix": "已整改"}),
    Row("evaluation", "POST", "/v1/cases/{case_id}/confirm", target="replied_case",
        ok="citizen:own", hidden=REVIEW_HIDDEN),
    Row("evaluation", "POST", "/v1/cases/{case_id}/reopen", target="reopenable_case",
        ok="citizen:own", hidden=REVIEW_HIDDEN, body=lambda t: {"reason": "没有改好"}),
    # Indicators and the composite index (指标, 综合指数).
    Row("evaluation", "GET", "/v1/indicators", ok="public"),
    Row("evaluation", "GET", "/v1/indicators/values", ok=READERS_A, query=SCOPE_A),
    Row("evaluation", "GET", "/v1/indicators/series", ok=READERS_A,
        query={**SCOPE_A, "indicator": "satisfaction_rate", "granularity": "day"}),
    Row("evaluation", "GET", "/v1/indicators/breakdown", ok=READERS_A,
        query={**SCOPE_A, "by": "item"}),
    Row("evaluation", "GET", "/v1/indicators/export.csv", ok=READERS_A,
        query={"scope_kind": "department", "scope_id": "d1" * 16, "period": "2026-11"}),
    Row("evaluation", "GET", "/v1/index-systems", ok=READERS),
    Row("evaluation", "POST", "/v1/index-systems", ok="platform_admin",
        body=lambda t: DEFAULT_SYSTEM),
    Row("evaluation", "GET", "/v1/index-systems/current", ok=READERS),
    Row("evaluation", "GET", "/v1/index-systems/{version}", target="version", ok=READERS),
    Row("evaluation", "GET", "/v1/rankings", ok=READERS, query={"period": "2026-11"}),
]  # fmt: skip

ROWS: list[Row] = [
    *HEALTH, *IDENTITY, *CATALOG, *EXCHANGE, *WORKFLOW, *EVALUATION, *GATEWAY
]  # fmt: skip
