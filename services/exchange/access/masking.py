"""Masks (脱敏) for the values of sensitive and personal fields, chosen by the field's type and
name; the masks themselves are ``libs/common/masks.py`` (shared with identity's way of showing
identifiers). Numbers, booleans and unknown shapes are withheld (``null``): a partial number
would still disclose a magnitude.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from libs.common.masks import (
    mask_account,
    mask_address,
    mask_credit_code,
    mask_date,
    mask_name,
    mask_phone,
    mask_resident_id,
    mask_text,
)
from services.exchange.datasets.models import DatasetField

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
