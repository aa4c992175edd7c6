"""Dependencies shared by the identity part's routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.identity.notifications import CodeSender
from services.identity.protection import IdentifierProtector


async def _protector(request: Request) -> IdentifierProtector:
    protector: IdentifierProtector = request.app.state.protector
    return protector


ProtectorDep = Annotated[IdentifierProtector, Depends(_protector)]


async def _code_sender(request: Request) -> CodeSender:
    sender: CodeSender = request.app.state.code_sender
    return sender


CodeSenderDep = Annotated[CodeSender, Depends(_code_sender)]
