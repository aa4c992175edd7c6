"""Your data: who used it (谁用了我的数据), and the consents you gave."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, Response

from libs.common.database import SessionDep
from portal.web import CsrfChecked, SignedIn, platform, render, see_other, token_of

router = APIRouter(prefix="/me", include_in_schema=False)

Whose = Annotated[str, Query(pattern=r"^(|self|organisation)$")]


@router.get("/data", response_class=HTMLResponse)
async def who_used_my_data(
    request: Request,
    db: SessionDep,
    visitor: SignedIn,
    whose: Whose = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> HTMLResponse:
    """Every read of (and refused attempt at) your records: who, when, which fields, why."""
    params = {
        "limit": 50,
        **({"whose": whose} if whose else {}),
        **({"cursor": cursor} if cursor else {}),
    }
    page = await platform(request).get_json(
        "/api/exchange/v1/me/accesses", token=await token_of(request, db, visitor), params=params
    )
    return render(request, "my_data.html", {"page": page, "whose": whose})


@router.get("/consents", response_class=HTMLResponse)
async def consents(request: Request, db: SessionDep, visitor: SignedIn) -> HTMLResponse:
    """The consents you gave organisations, newest first; each can be taken back."""
    page = await platform(request).get_json(
        "/api/exchange/v1/consents",
        token=await token_of(request, db, visitor),
        params={"limit": 100},
    )
    return render(request, "consents.html", {"page": page})


@router.post("/consents/{consent_id}/revoke")
async def revoke_consent(
    request: Request,
    db: SessionDep,
    visitor: CsrfChecked,
    consent_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
) -> Response:
    """Take a consent back: queries citing it are refused from now on."""
    await platform(request).call(
        "POST", f"/api/exchange/v1/consents/{consent_id}/revoke",
        token=await token_of(request, db, visitor),
    )  # fmt: skip
    return see_other("/me/consents?revoked=1")
