"""National identifiers: validating, generating and masking them.

- 居民身份证号码, the resident identity number (GB 11643-1999): 18 characters, a six-digit
  administrative division code (行政区划代码), the birth date, a three-digit sequence (odd for
  men, even for women) and an ISO 7064 MOD 11-2 check character.
- 统一社会信用代码, the unified social credit code (GB 32100-2015): 18 characters of
  ``0-9A-Z`` without I, O, Z, S and V; the registration authority, the entity type, the
  registering authority's division code, the organisation code (GB 11714, with its own check
  character) and a MOD 31 check character.
- Mainland mobile phone numbers, and the masks identifiers are shown with.

The first two digits of a division code must always name a province; with ``strict=True`` the
whole code must be in :mod:`services.identity.regions` (which details only the demo province,
and keeps withdrawn codes, since numbers outlive them). Input is normalised before it is
validated (NFKC, so full-width digits typed with a Chinese input method count; surrounding
blanks dropped; letters upper-cased); the parsed values hold the canonical ASCII form. An error
says which part is wrong but never what the check character should be: "fixing" the last
character after a typo elsewhere would yield someone else's number.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum

from libs.common import identifiers as common_identifiers
from services.identity import regions


class InvalidIdentifier(common_identifiers.InvalidIdentifier):
    """An identifier that does not follow its standard; ``part`` names what is wrong."""

    def __init__(self, message: str, *, part: str) -> None:
        super().__init__(message)
        self.part = part


# The canonical normalisation and check characters are libs.common.identifiers' (every part
# must agree on them); this module adds what identity shows people: the meaning of each part
# and an explanation of what is wrong.
_normalise = common_identifiers.normalise_input


_DIGITS = frozenset("0123456789")


def _first_not_in(value: str, allowed: frozenset[str], start: int = 0) -> int | None:
    """The index of the first character of ``value[start:]`` outside ``allowed``."""
    for index in range(start, len(value)):
        if value[index] not in allowed:
            return index
    return None


# --- 居民身份证号码 (GB 11643-1999) ------------------------------------------------------------

RESIDENT_ID_LENGTH = 18
_ID_CHECK_CHARS = frozenset("0123456789X")
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
# Birth dates are Beijing time's: a server on UTC would otherwise call a baby born after
# midnight in China "born in the future" for eight hours. China has kept UTC+8 since 1991.
CHINA_TIMEZONE = timezone(timedelta(hours=8), "Asia/Shanghai")
# Residence permits of Taiwan residents (台湾居民居住证, 2018) carry 830000, which GB/T 2260
# does not list (it gives Taiwan 710000); those of Hong Kong and Macao residents carry 810000
# and 820000, which it does.
_RESIDENCE_PERMIT_CODES = frozenset({"810000", "820000", "830000"})


class Sex(StrEnum):
    """The sex a resident identity number records."""

    MALE = "male"
    FEMALE = "female"


@dataclass(frozen=True, slots=True)
class ResidentId:
    """A valid resident identity number and what it says."""

    number: str
    region_code: str
    birth_date: date
    sex: Sex

    @property
    def sequence(self) -> str:
        """The three-digit sequence code (顺序码)."""
        return self.number[14:17]

    @property
    def masked(self) -> str:
        """The number as shown to those not entitled to see it."""
        return mask_resident_id(self.number)

    def age_on(self, day: date) -> int:
        """The holder's age in whole years on ``day``."""
        before_birthday = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
        return day.year - self.birth_date.year - before_birthday


def china_today() -> date:
    """Today's date in China, the default bound on birth dates."""
    return datetime.now(CHINA_TIMEZONE).date()


def resident_id_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character for the first 17 digits of an identity number."""
    try:
        return common_identifiers.resident_id_check_char(first17)
    except common_identifiers.InvalidIdentifier as exc:
        raise InvalidIdentifier(str(exc), part="format") from None


def _resident_region(code: str, *, strict: bool) -> None:
    if code[:2] + "0000" not in regions.PROVINCE_CODES and code not in _RESIDENCE_PERMIT_CODES:
        raise InvalidIdentifier(
            f"the administrative division code {code} names no province "
            f"(its first two digits, {code[:2]}, are not a GB/T 2260 province code)",
            part="region",
        )
    if strict and not (
        regions.is_known_region(code, include_withdrawn=True) or code in _RESIDENCE_PERMIT_CODES
    ):
        raise InvalidIdentifier(
            f"the administrative division code {code} is not a known region", part="region"
        )


def _birth_date(digits: str, today: date) -> date:
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError:
        raise InvalidIdentifier(
            f"the birth date {digits} (characters 7-14) is not a calendar date",
            part="birth_date",
        ) from None
    if born < EARLIEST_BIRTH_DATE:
        raise InvalidIdentifier(
            f"the birth date {born.isoformat()} is before {EARLIEST_BIRTH_DATE.isoformat()}",
            part="birth_date",
        )
    if born > today:
        raise InvalidIdentifier(
            f"the birth date {born.isoformat()} is in the future", part="birth_date"
        )
    return born


def parse_resident_id(value: str, *, today: date | None = None, strict: bool = False) -> ResidentId:
    """Validate a resident identity number (``strict``: its whole division code is known)."""
    number = _normalise(value)
    if len(number) == 15 and _first_not_in(number, _DIGITS) is None:
        raise InvalidIdentifier(
            "15-digit identity numbers (issued before 1999) are no longer valid; "
            "give the 18-character number",
            part="length",
        )
    if len(number) != RESIDENT_ID_LENGTH:
        raise InvalidIdentifier(
            f"an identity number has 18 characters, not {len(number)}", part="length"
        )
    bad = _first_not_in(number[:17], _DIGITS)
    if bad is not None:
        raise InvalidIdentifier(
            f"character {bad + 1} ({number[bad]!r}) must be a digit: only the last character "
            "may be X",
            part="format",
        )
    if number[17] not in _ID_CHECK_CHARS:
        raise InvalidIdentifier(
            f"the check character (character 18, {number[17]!r}) must be a digit or X",
            part="format",
        )
    region_code = number[:6]
    _resident_region(region_code, strict=strict)
    born = _birth_date(number[6:14], today or china_today())
    if resident_id_check_char(number[:17]) != number[17]:
        raise InvalidIdentifier(
            "the check character (character 18) does not match the other 17: "
            "a character is mistyped",
            part="check_char",
        )
    sex = Sex.MALE if int(number[14:17]) % 2 else Sex.FEMALE
    return ResidentId(number=number, region_code=region_code, birth_date=born, sex=sex)


def is_valid_resident_id(value: str, *, today: date | None = None, strict: bool = False) -> bool:
    """Whether ``value`` is a valid resident identity number."""
    try:
        parse_resident_id(value, today=today, strict=strict)
    except InvalidIdentifier:
        return False
    return True


def make_resident_id(region_code: str, birth_date: date, sequence: int) -> str:
    """A valid resident identity number with its check character, for demo and test data."""
    if not 0 <= sequence <= 999:
        raise InvalidIdentifier(
            f"the sequence is three digits, 0-999, not {sequence}", part="sequence"
        )
    first17 = f"{region_code}{birth_date:%Y%m%d}{sequence:03d}"
    number = first17 + resident_id_check_char(first17)
    parse_resident_id(number, today=max(china_today(), birth_date))
    return number


# --- 统一社会信用代码 (GB 32100-2015) ----------------------------------------------------------

CREDIT_CODE_LENGTH = 18
CREDIT_CODE_CHARSET = common_identifiers.CREDIT_CODE_CHARSET
_CREDIT_CHARS = frozenset(CREDIT_CODE_CHARSET)

# 登记管理部门代码 -> (the authority, its 机构类别代码 -> the entity type): GB 32100-2015's table,
# plus the later assignments 54/55 (村民/居民委员会) and G (公安, 境外非政府组织代表机构).
CREDIT_CODE_AUTHORITIES: Mapping[str, tuple[str, Mapping[str, str]]] = {
    "1": ("机构编制", {"1": "机关", "2": "事业单位", "3": "中央编办直接管理机构编制的群众团体",
                      "9": "其他"}),
    "2": ("外交", {"1": "外国常驻新闻机构", "9": "其他"}),
    "3": ("司法行政", {"1": "律师执业机构", "2": "公证处", "3": "基层法律服务所",
                      "4": "司法鉴定机构", "5": "仲裁委员会", "9": "其他"}),
    "4": ("文化", {"1": "外国在华文化中心", "9": "其他"}),
    "5": ("民政", {"1": "社会团体", "2": "民办非企业单位", "3": "基金会", "4": "村民委员会",
                  "5": "居民委员会", "9": "其他"}),
    "6": ("旅游", {"1": "外国旅游部门常驻代表机构",
                  "2": "港澳台地区旅游部门常驻内地（大陆）代表机构", "9": "其他"}),
    "7": ("宗教", {"1": "宗教活动场所", "2": "宗教院校", "9": "其他"}),
    "8": ("工会", {"1": "基层工会", "9": "其他"}),
    "9": ("工商", {"1": "企业", "2": "个体工商户", "3": "农民专业合作社"}),
    "A": ("中央军委改革和编制办公室", {"1": "军队事业单位", "9": "其他"}),
    "G": ("公安", {"1": "境外非政府组织代表机构", "9": "其他"}),
    "N": ("农业", {"1": "组级集体经济组织", "2": "村级集体经济组织",
                  "3": "乡镇级集体经济组织", "9": "其他"}),
    "Y": ("其他", {"1": "其他"}),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CreditCode:
    """A valid unified social credit code and what it says."""

    code: str
    authority: str
    entity_type: str
    region_code: str
    organisation_code: str  # nine characters, the last its GB 11714 check character

    @property
    def authority_name(self) -> str:
        """The registration authority, in Chinese (e.g. 工商)."""
        return CREDIT_CODE_AUTHORITIES[self.authority][0]

    @property
    def entity_type_name(self) -> str:
        """The kind of entity, in Chinese (e.g. 企业)."""
        return CREDIT_CODE_AUTHORITIES[self.authority][1][self.entity_type]

    @property
    def masked(self) -> str:
        """The code as shown to those not entitled to see it."""
        return mask_credit_code(self.code)


def organisation_code_check_char(first8: str) -> str:
    """The GB 11714 check character of an eight-character organisation code."""
    try:
        return common_identifiers.organisation_code_check_char(first8)
    except common_identifiers.InvalidIdentifier as exc:
        raise InvalidIdentifier(str(exc), part="organisation_code") from None


def credit_code_check_char(first17: str) -> str:
    """The GB 32100 MOD 31 check character over the first 17 characters of a credit code."""
    try:
        return common_identifiers.credit_code_check_char(first17)
    except common_identifiers.InvalidIdentifier as exc:
        raise InvalidIdentifier(str(exc), part="format") from None


def _credit_region(code: str, *, strict: bool) -> None:
    bad = _first_not_in(code, _DIGITS)
    if bad is not None:
        raise InvalidIdentifier(
            f"character {bad + 3} ({code[bad]!r}) must be a digit: characters 3-8 are the "
            "administrative division code",
            part="region",
        )
    if code == regions.NATIONAL_CODE:
        return
    if code[:2] + "0000" not in regions.PROVINCE_CODES:
        raise InvalidIdentifier(
            f"the administrative division code {code} names no province "
            f"(its first two digits, {code[:2]}, are not a GB/T 2260 province code)",
            part="region",
        )
    if strict and not regions.is_known_region(code, include_withdrawn=True):
        raise InvalidIdentifier(
            f"the administrative division code {code} is not a known region", part="region"
        )


def parse_credit_code(value: str, *, strict: bool = False) -> CreditCode:
    """Validate a unified social credit code (``strict``: its whole division code is known)."""
    code = _normalise(value)
    if len(code) != CREDIT_CODE_LENGTH:
        raise InvalidIdentifier(
            f"a unified social credit code has 18 characters, not {len(code)}", part="length"
        )
    bad = _first_not_in(code, _CREDIT_CHARS)
    if bad is not None:
        raise InvalidIdentifier(
            f"character {bad + 1} ({code[bad]!r}) is not allowed: a credit code uses 0-9 and "
            "A-Z without I, O, Z, S and V",
            part="format",
        )
    authority, entity_type = code[0], code[1]
    if authority not in CREDIT_CODE_AUTHORITIES:
        raise InvalidIdentifier(
            f"the registration authority code (character 1, {authority!r}) is unknown",
            part="authority",
        )
    authority_name, entity_types = CREDIT_CODE_AUTHORITIES[authority]
    if entity_type not in entity_types:
        raise InvalidIdentifier(
            f"the entity type code (character 2, {entity_type!r}) is not one that authority "
            f"{authority} ({authority_name}) assigns; it assigns {', '.join(entity_types)}",
            part="entity_type",
        )
    _credit_region(code[2:8], strict=strict)
    # The MOD 31 check first: it catches every single mistyped character, wherever it is.
    if credit_code_check_char(code[:17]) != code[17]:
        raise InvalidIdentifier(
            "the check character (character 18) does not match the other 17: "
            "a character is mistyped",
            part="check_char",
        )
    if organisation_code_check_char(code[8:16]) != code[16]:
        raise InvalidIdentifier(
            "the organisation code (characters 9-17) fails its GB 11714 check",
            part="organisation_code",
        )
    return CreditCode(
        code=code,
        authority=authority,
        entity_type=entity_type,
        region_code=code[2:8],
        organisation_code=code[8:17],
    )


def is_valid_credit_code(value: str, *, strict: bool = False) -> bool:
    """Whether ``value`` is a valid unified social credit code."""
    try:
        parse_credit_code(value, strict=strict)
    except InvalidIdentifier:
        return False
    return True


def make_credit_code(authority: str, entity_type: str, region_code: str, org_code8: str) -> str:
    """A valid credit code with both its check characters, for demo and test data."""
    org_code = org_code8 + organisation_code_check_char(org_code8)
    first17 = f"{authority}{entity_type}{region_code}{org_code}"
    code = first17 + credit_code_check_char(first17)
    parse_credit_code(code)
    return code


# --- Mobile phone numbers -----------------------------------------------------------------------

_MOBILE = re.compile(r"1[3-9][0-9]{9}", re.ASCII)
_PHONE_SEPARATORS = re.compile(r"[\s\-()]")


def normalise_phone(value: str) -> str:
    """A mainland mobile number in its 11-digit form, without blanks, dashes or +86."""
    phone = _PHONE_SEPARATORS.sub("", unicodedata.normalize("NFKC", value))
    for prefix in ("+86", "0086", "86"):
        if phone.startswith(prefix) and len(phone) == len(prefix) + 11:
            phone = phone[len(prefix) :]
            break
    if not _MOBILE.fullmatch(phone):
        raise InvalidIdentifier(
            "a mainland mobile number has 11 digits and starts with 13-19", part="phone"
        )
    return phone


def is_valid_phone(value: str) -> bool:
    """Whether ``value`` is a mainland mobile number."""
    try:
        normalise_phone(value)
    except InvalidIdentifier:
        return False
    return True


# --- Masks --------------------------------------------------------------------------------------


def _mask(value: str, keep_start: int, keep_end: int) -> str:
    value = value.strip()
    if len(value) <= keep_start + keep_end:
        # Too short to keep anything without showing all of it.
        return "*" * len(value)
    hidden = len(value) - keep_start - keep_end
    return value[:keep_start] + "*" * hidden + value[len(value) - keep_end :]


def mask_resident_id(value: str) -> str:
    """An identity number with only its division code and last four characters shown."""
    return _mask(value, 6, 4)


def mask_credit_code(value: str) -> str:
    """A credit code with only its authority, type, division code and last two shown."""
    return _mask(value, 8, 2)


def mask_phone(value: str) -> str:
    """A mobile number with only its first three and last four digits shown."""
    return _mask(value, 3, 4)


def mask_name(value: str) -> str:
    """A name with only its first character (the family name, usually) shown."""
    return _mask(value, 1, 0)
