"""Masks (脱敏) for the values of sensitive and personal fields, by the field's type and name.

A masked value keeps enough to be recognised by someone who knows it (the family name, the
phone's prefix and last four digits, an identifier's division code) and nothing that identifies
on its own. Numbers, booleans and unknown shapes are withheld (``null``): a partial number
would still disclose a magnitude.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.exchange.datasets.models import DatasetField


def _keep(value: str, start: int, end: int) -> str:
    if len(value) <= start + end:
        # Too short to keep anything without showing all of it.
        return "*" * len(value)
    return value[:start] + "*" * (len(value) - start - end) + value[len(value) - end :]


def mask_name(value: str) -> str:
    """张三 → 张*; 张三丰 → 张*丰; 欧阳娜娜 → 欧**娜 (first and last character kept)."""
    if len(value) <= 1:
        return "*"
    if len(value) == 2:
        return value[0] + "*"
    return _keep(value, 1, 1)


def mask_phone(value: str) -> str:
    """13800001234 → 138****1234."""
    return _keep(value, 3, 4)


def mask_resident_id(value: str) -> str:
    """The division code and the last four characters, as identity shows them."""
    return _keep(value, 6, 4)


def mask_credit_code(value: str) -> str:
    """The authority, type and division code, and the last two characters."""
    return _keep(value, 8, 2)


def mask_account(value: str) -> str:
    """A bank account or certificate number: its last four characters."""
    return _keep(value, 0, 4)


def mask_address(value: str) -> str:
    """An address: its first six characters (province and city), the rest hidden."""
    return _keep(value, 6, 0)


def mask_text(value: str) -> str:
    """Any other text: its first character."""
    return _keep(value, 1, 0)


def mask_date(value: str) -> str:
    """A date or date-time: its year only (1988-03-12 → 1988-**-**)."""
    year, sep, _rest = value.partition("-")
    return f"{year}-**-**" if sep and year.isdigit() else mask_text(value)


_BY_NAME: tuple[tuple[Callable[[str], bool], Callable[[str], str]], ...] = (
    (lambda n: "resident_id" in n or n.endswith("id_number"), mask_resident_id),
    (lambda n: "credit_code" in n, mask_credit_code),
    (lambda n: "phone" in n or "mobile" in n, mask_phone),
    (lambda n: n == "name" or n.endswith("_name") and not n.startswith("entity"), mask_name),
    (lambda n: "address" in n, mask_address),
    (lambda n: "account" in n or n.endswith("_no") or "card" in n, mask_account),
)


def mask_value(field: DatasetField, value: Any) -> Any:
    """``value`` of ``field`` masked: strings by their kind, dates to the year, others withheld."""
    if value is None:
        return None
    if field.type in {"date", "datetime"} and isinstance(value, str):
        return mask_date(value)
    if not isinstance(value, str):
        return None
    for matches, mask in _BY_NAME:
        if matches(field.name):
            return mask(value)
    return mask_text(value)
