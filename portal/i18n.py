"""Languages: Simplified Chinese (default) and English, through gettext catalogues.

Messages are written in English in the templates and code; ``locale/zh_CN`` translates them.
The language of a request is the ``pingtai_lang`` cookie's (set by the switch in the header).
"""

from __future__ import annotations

import gettext
from contextvars import ContextVar
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"
LANGUAGES = {"zh": "zh_CN", "en": "en"}
DEFAULT_LANGUAGE = "zh"
HTML_LANG = {"zh": "zh-CN", "en": "en"}
LANGUAGE_COOKIE = "pingtai_lang"

_catalogues: dict[str, gettext.NullTranslations] = {
    code: gettext.translation(DOMAIN, LOCALE_DIR, languages=[locale], fallback=True)
    for code, locale in LANGUAGES.items()
}
current_language: ContextVar[str] = ContextVar("current_language", default=DEFAULT_LANGUAGE)


def pick_language(cookie: str | None) -> str:
    """The language a request is served in."""
    return cookie if cookie in LANGUAGES else DEFAULT_LANGUAGE


def _(message: str) -> str:
    """``message`` in the current request's language."""
    return _catalogues[current_language.get()].gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural of a message in the current language."""
    return _catalogues[current_language.get()].ngettext(singular, plural, n)


def pick(zh: str | None, en: str | None) -> str:
    """A value the services give in both languages (name / name_en): the current one's."""
    if current_language.get() == "en" and en:
        return en
    return zh or en or ""
