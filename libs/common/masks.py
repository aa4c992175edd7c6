"""Masks (脱敏): values shown partly to those not entitled to see them whole.

A masked value keeps enough to be recognised by someone who already knows it (the family name,
a phone's prefix and last four digits, an identifier's division code) and nothing that
identifies on its own. Identity shows identifiers this way; the exchange masks the sensitive
and personal fields of the records it serves (``services/exchange/access/masking.py`` picks the
mask by the field's type and name).
"""

from __future__ import annotations


def mask_keep(value: str, start: int, end: int) -> str:
    """``value`` (stripped) with all but its first ``start`` and last ``end`` characters
    hidden; all of it when it is too short to keep anything without showing it whole."""
    value = value.strip()
    if len(value) <= start + end:
        return "*" * len(value)
    return value[:start] + "*" * (len(value) - start - end) + value[len(value) - end :]


def mask_name(value: str) -> str:
    """张三 → 张*; 张三丰 → 张*丰; 欧阳娜娜 → 欧**娜 (first and last character kept)."""
    value = value.strip()
    if len(value) <= 1:
        return "*"
    if len(value) == 2:
        return value[0] + "*"
    return mask_keep(value, 1, 1)


def mask_phone(value: str) -> str:
    """13800001234 → 138****1234."""
    return mask_keep(value, 3, 4)


def mask_resident_id(value: str) -> str:
    """A resident identity number: its division code and last four characters
    (330106********1014)."""
    return mask_keep(value, 6, 4)


def mask_credit_code(value: str) -> str:
    """A unified social credit code: its authority, type and division code, and its last two
    characters (91330106********9C)."""
    return mask_keep(value, 8, 2)


def mask_account(value: str) -> str:
    """A bank account, card or certificate number: its last four characters."""
    return mask_keep(value, 0, 4)


def mask_address(value: str) -> str:
    """An address: its first six characters (province and city), the rest hidden."""
    return mask_keep(value, 6, 0)


def mask_text(value: str) -> str:
    """Any other text: its first character."""
    return mask_keep(value, 1, 0)


def mask_date(value: str) -> str:
    """A date or date-time: its year only (1988-03-12 → 1988-**-**); other text as text."""
    year, sep, _rest = value.strip().partition("-")
    return f"{year}-**-**" if sep and year.isdigit() else mask_text(value)
