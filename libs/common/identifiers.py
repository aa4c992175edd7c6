"""National identifiers every part must recognise the same way: their canonical form and checks.

- 居民身份证号码, the resident identity number (GB 11643-1999): 17 digits (division code,
  birth date, sequence) and an ISO 7064 MOD 11-2 check character (0-9 or X).
- 统一社会信用代码, the unified social credit code (GB 32100-2015): 18 characters of
  ``0-9A-Z`` without I, O, Z, S and V, with a GB 11714 check on the organisation code and a
  MOD 31 check character.

Input is normalised first (NFKC, so full-width characters typed with a Chinese input method
count; surrounding blanks dropped; letters upper-cased). These checks are the structural ones
a part holding records keyed by such numbers needs, and the check characters themselves;
identity's ``services.identity.identifiers`` computes its check characters here and adds the
detailed region table, the meaning of each part and the explanations it shows to people
registering.
"""

from __future__ import annotations

import operator
import unicodedata
from datetime import date

# GB/T 2260 province-level divisions (the first two digits of a division code), plus 83 for
# the residence permits of Taiwan residents (台湾居民居住证).
_PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82 83".split()
)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_ZERO_OFFSET = ord("0") * sum(_ID_WEIGHTS)
# GB 32100 leaves out I, O, Z, S and V (easily misread as 1, 0, 2, 5 and U).
CREDIT_CODE_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CREDIT_VALUES = {char: value for value, char in enumerate(CREDIT_CODE_CHARSET)}
_CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_AUTHORITIES = frozenset("123456789AGNY")


class InvalidIdentifier(ValueError):
    """A value that is not a valid identifier of its kind; the message says what is wrong."""


def normalise_input(value: str) -> str:
    """What is checked of a typed identifier: NFKC (full-width characters count), surrounding
    blanks dropped, letters upper-cased."""
    return unicodedata.normalize("NFKC", value).strip().upper()


def resident_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of the first 17 digits of a resident id number."""
    if len(first17) != 17 or not (first17.isascii() and first17.isdigit()):
        raise InvalidIdentifier("the check character is computed over 17 digits")
    # Over the ASCII codes: each digit is its code less ord("0"), so the weighted sum is the
    # codes' weighted sum less ord("0") times the weights' sum (no int() per digit: 1.7 -> 0.6 us).
    weighted = sum(map(operator.mul, first17.encode(), _ID_WEIGHTS)) - _ID_ZERO_OFFSET
    return _ID_CHECK_CHARS[weighted % 11]


def organisation_code_check_char(first8: str) -> str:
    """The GB 11714 check character of an eight-character organisation code."""
    if len(first8) != 8 or any(char not in _CREDIT_VALUES for char in first8):
        raise InvalidIdentifier(
            "an organisation code's check character is computed over 8 characters of "
            + CREDIT_CODE_CHARSET
        )
    # GB 11714 values a letter by its place in the whole alphabet: A=10 ... Z=35.
    values = (int(c) if c.isdigit() else ord(c) - ord("A") + 10 for c in first8)
    remainder = 11 - sum(v * w for v, w in zip(values, _ORG_WEIGHTS, strict=True)) % 11
    return {10: "X", 11: "0"}.get(remainder, str(remainder))


def credit_code_check_char(first17: str) -> str:
    """The GB 32100 MOD 31 check character of the first 17 characters of a credit code."""
    if len(first17) != 17 or any(char not in _CREDIT_VALUES for char in first17):
        raise InvalidIdentifier(
            "the check character is computed over 17 characters of " + CREDIT_CODE_CHARSET
        )
    total = sum(_CREDIT_VALUES[c] * w for c, w in zip(first17, _CREDIT_WEIGHTS, strict=True))
    return CREDIT_CODE_CHARSET[(31 - total % 31) % 31]


def normalise_resident_id(value: str) -> str:
    """The canonical 18-character form of a resident identity number (GB 11643), or raise."""
    number = normalise_input(value)
    if len(number) != 18:
        raise InvalidIdentifier(f"a resident identity number has 18 characters, not {len(number)}")
    if not (number[:17].isascii() and number[:17].isdigit()):
        raise InvalidIdentifier("the first 17 characters of a resident identity number are digits")
    if number[:2] not in _PROVINCES:
        raise InvalidIdentifier(f"the division code {number[:6]} names no province")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdentifier(f"the birth date {number[6:14]} is not a calendar date") from None
    if born.year < 1900:
        raise InvalidIdentifier(f"the birth date {born.isoformat()} is before 1900")
    if resident_id_check_char(number[:17]) != number[17]:
        raise InvalidIdentifier("the check character (character 18) does not match the others")
    return number


def normalise_credit_code(value: str) -> str:
    """The canonical form of a unified social credit code (GB 32100), or raise."""
    code = normalise_input(value)
    if len(code) != 18:
        raise InvalidIdentifier(f"a unified social credit code has 18 characters, not {len(code)}")
    if any(char not in _CREDIT_VALUES for char in code):
        raise InvalidIdentifier("a credit code uses 0-9 and A-Z without I, O, Z, S and V")
    if code[0] not in _AUTHORITIES:
        raise InvalidIdentifier(f"the registration authority code {code[0]!r} is unknown")
    region = code[2:8]
    if not region.isdigit() or (region != "100000" and region[:2] not in _PROVINCES):
        raise InvalidIdentifier(f"the division code {region} names no province")
    if credit_code_check_char(code[:17]) != code[17]:
        raise InvalidIdentifier("the check character (character 18) does not match the others")
    if organisation_code_check_char(code[8:16]) != code[16]:
        raise InvalidIdentifier("the organisation code (characters 9-17) fails its check")
    return code
