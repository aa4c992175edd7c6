"""The region tree by administrative division code (行政区划代码, GB/T 2260).

A code is six digits ``PPCCDD``: ``PP0000`` a province, ``PPCC00`` a prefecture-level city,
anything else a county-level division. Its ancestors follow from the digits, so evaluation rolls
a county's figures up to its city and province without asking identity. County-level divisions
administered directly by the province (``PP90DD``, 省直辖县级行政区划) roll up to the province.
"""

from __future__ import annotations

import re

CODE = re.compile(r"^\d{6}$")


def ancestors_and_self(code: str) -> list[str]:
    """``code`` and the divisions above it, nearest first; [] for what is not a division code."""
    if not CODE.match(code) or code == "000000":
        return []
    province = code[:2] + "0000"
    city = code[:4] + "00"
    if code == province:
        return [code]
    if code == city:
        return [code, province]
    if code[2:4] == "90":
        return [code, province]
    return [code, city, province]


def parent(code: str) -> str | None:
    """The division directly above ``code``; None for a province."""
    chain = ancestors_and_self(code)
    return chain[1] if len(chain) > 1 else None


def is_within(code: str, region: str) -> bool:
    """Whether ``code`` is ``region`` or lies inside it."""
    return region in ancestors_and_self(code)
