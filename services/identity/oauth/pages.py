"""Server-rendered pages of the provider (Jinja2), with headers that keep them out of frames
and caches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True),
    auto_reload=False,
)

PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # No scripts at all; inline styles only. form-action is left open: after the sign-in form
    # the browser follows a redirect to the client, which form-action would block.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
    ),
}

ERROR_MESSAGES: dict[str, tuple[str, str]] = {
    "invalid_client": (
        "申请登录的应用未注册或已停用。",
        "The application asking you to sign in is unknown or disabled.",
    ),
    "invalid_request": (
        "登录请求无效（回调地址不符或参数有误）。",
        "The sign-in request is not valid (its return address or a parameter is wrong).",
    ),
    "invalid_logout": (
        "退出登录请求无效。",
        "The sign-out request is not valid.",
    ),
    "form_expired": (
        "登录页面已过期或来自其他浏览器，请从应用重新开始登录。",
        "This sign-in page has expired or came from another browser. "
        "Start again from the application.",
    ),
}


def render(template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A page from ``templates/oauth/<template>``."""
    html = _environment.get_template(f"oauth/{template}").render(**context)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


def error_page(error: str, *, status: int = 400, detail: str | None = None) -> HTMLResponse:
    """A page saying why the sign-in cannot go on, when there is nowhere safe to redirect."""
    zh, en = ERROR_MESSAGES.get(error, ERROR_MESSAGES["invalid_request"])
    if detail:
        en = f"{en} ({detail})"
    return render("error.html", status=status, error=error, message_zh=zh, message_en=en)
